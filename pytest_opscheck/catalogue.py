"""The built-in checks by runbook topic, matched to a runbook's own diagnosis headings for coverage."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .runbook import Runbook, Section, diagnosis_sections, plain

# Topic -> the words that name it in a runbook heading, most specific first.
TOPICS: dict[str, tuple[str, ...]] = {
    "outage": ("application not starting", "service outage", "not starting", "outage", "crash", "unavailable"),
    "database": ("database connection", "database down", "database", "postgres", "postgresql", "db"),
    "frontend-404": ("frontend 404", "404", "frontend", "not found"),
    "api-500": ("500", "api error", "server error"),
    "auth": ("authentication", "login", "unauthorized", "auth", "jwt", "token"),
    "websocket": ("websocket", "realtime", "real time", "disconnection"),
    "slow": ("slow", "performance", "latency", "timeout"),
    "email": ("email", "smtp", "mail"),
    "resources": ("resources", "disk", "memory", "cpu", "oom"),
    "logs": ("logs", "log"),
    "network": ("network", "dns", "connectivity"),
    "health": ("health", "healthcheck"),
    "tls": ("tls", "ssl", "certificate", "https"),
}

# Check id -> the topics of the runbook diagnoses it automates, the closest first.
CHECK_TOPICS: dict[str, tuple[str, ...]] = {
    "stack.services_running": ("outage",),
    "stack.no_crash_loop": ("outage",),
    "stack.no_oom_kill": ("outage", "resources"),
    "stack.healthchecks": ("outage", "health"),
    "stack.required_env": ("outage",),
    "stack.ports_bound": ("outage", "network"),
    "stack.backend_reaches_db": ("network", "database", "outage"),
    "stack.logs_clean": ("logs", "outage", "api-500"),
    "host.disk_free": ("resources", "outage"),
    "stack.memory_headroom": ("resources", "outage", "slow"),
    "stack.cpu": ("resources", "slow"),
    "db.reachable": ("database", "outage"),
    "db.migrations_current": ("database", "api-500", "slow"),
    "db.connections_headroom": ("database", "slow"),
    "db.no_long_transactions": ("database", "slow"),
    "db.slow_queries": ("slow", "database"),
    "api.latency": ("slow",),
    "backend.health_memory": ("slow", "resources", "health"),
    "backend.health": ("health", "outage"),
    "frontend.root": ("health", "outage", "frontend-404"),
    "frontend.spa_routes": ("frontend-404",),
    "frontend.assets": ("frontend-404",),
    "api.no_server_errors": ("api-500",),
    "auth.secret_configured": ("auth",),
    "auth.login": ("auth",),
    "auth.token_accepted": ("auth",),
    "auth.rejects_bad_password": ("auth",),
    "auth.rejects_anonymous": ("auth",),
    "auth.cors_preflight": ("auth",),
    "ws.handshake": ("websocket",),
    "ws.ping": ("websocket",),
    "ws.connections_gauge": ("websocket",),
    "email.configured": ("email",),
    "email.smtp_session": ("email",),
    "tls.cert_expiry": ("tls",),
}


@dataclass(frozen=True)
class CoverageRow:
    """One diagnosis section of the runbook and the checks that cover it (none: uncovered)."""

    section: Section
    checks: tuple[str, ...]


def base_id(check_id: str) -> str:
    """The check id without its parameters: `frontend.spa_routes[/login]` is `frontend.spa_routes`."""
    return check_id.partition("[")[0]


def topics_for(check_id: str) -> tuple[str, ...]:
    """The runbook topics a check automates, the closest first; empty for a check outside the catalogue."""
    return CHECK_TOPICS.get(base_id(check_id), ())


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", plain(text).lower())


def _names(heading: list[str], phrase: list[str]) -> bool:
    """Whether the heading's words hold the phrase's (a heading word may extend one: "error" in "errors")."""

    def same(word: str, wanted: str) -> bool:
        return word == wanted or (len(wanted) >= 4 and word.startswith(wanted))

    return any(
        all(same(heading[start + i], wanted) for i, wanted in enumerate(phrase))
        for start in range(len(heading) - len(phrase) + 1)
    )


def topic_score(section: Section, topic: str) -> int:
    """How specifically the section's heading names `topic`: the words of its longest keyword, 0 if none."""
    heading = _words(section.title)
    return max((len(p) for p in map(_words, TOPICS.get(topic, ())) if _names(heading, p)), default=0)


def section_topics(section: Section) -> set[str]:
    """The topics the section's heading names."""
    return {topic for topic in TOPICS if topic_score(section, topic)}


def matching_section(runbook: Runbook, check_id: str) -> Section | None:
    """The diagnosis section whose heading best names the check's closest topic (first in the runbook on a tie)."""
    sections = diagnosis_sections(runbook)
    for topic in topics_for(check_id):
        scored = [(topic_score(s, topic), -i) for i, s in enumerate(sections)]
        best = max(scored, default=(0, 0))
        if best[0]:
            return sections[-best[1]]
    return None


def _anchor(reference: str) -> str:
    """The anchor of a `runbook` marker's reference: `docs/runbook.md#a`, `#a` and `a` are all `a`."""
    return reference.rpartition("#")[2]


def coverage(runbook: Runbook, checks: Mapping[str, str | None]) -> list[CoverageRow]:
    """Each diagnosis section with the checks covering it: a check with an explicit `runbook` anchor covers
    that section only; one without covers every section whose heading names one of its topics."""
    rows = []
    for section in diagnosis_sections(runbook):
        topics = section_topics(section)
        covering = dict.fromkeys(
            base_id(check_id)
            for check_id, reference in sorted(checks.items())
            if (_anchor(reference) == section.anchor if reference else topics.intersection(topics_for(check_id)))
        )
        rows.append(CoverageRow(section, tuple(covering)))
    return rows


def format_coverage(rows: list[CoverageRow]) -> list[str]:
    """Plain lines for the terminal: each section with its checks, then the uncovered sections."""
    lines = [f"{row.section.title} (#{row.section.anchor}): {', '.join(row.checks) or 'NOT COVERED'}" for row in rows]
    uncovered = [f"{row.section.title} (#{row.section.anchor})" for row in rows if not row.checks]
    if not rows:
        lines.append("no diagnosis section found in the runbook")
    elif uncovered:
        lines.append(f"uncovered: {', '.join(uncovered)}")
    else:
        lines.append("every diagnosis section is covered")
    return lines
