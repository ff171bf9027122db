"""Which runbook diagnosis each built-in check automates, matched to a runbook's own headings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .runbook import Runbook, Section, diagnosis_sections

# Topic -> words that name it in a runbook heading.
TOPICS: dict[str, tuple[str, ...]] = {
    "outage": ("not starting", "service outage", "outage", "crash", "down"),
    "database": ("database", "postgres", "db "),
    "frontend": ("frontend", "404"),
    "api-errors": ("500", "api error", "server error"),
    "auth": ("authentication", "auth", "login", "unauthorized"),
    "websocket": ("websocket", "realtime", "socket"),
    "slow": ("slow", "performance", "latency"),
    "email": ("email", "mail", "smtp"),
}

CHECK_TOPICS: dict[str, tuple[str, ...]] = {
    "stack.services_running": ("outage",),
    "stack.no_crash_loop": ("outage",),
    "stack.no_oom_kill": ("outage",),
    "stack.healthchecks": ("outage",),
    "stack.required_env": ("outage",),
    "stack.ports_bound": ("outage",),
    "stack.backend_reaches_db": ("outage", "database"),
    "stack.logs_clean": ("outage", "api-errors"),
    "host.disk_free": ("outage",),
    "stack.memory_headroom": ("outage", "slow"),
    "stack.cpu": ("slow",),
    "db.reachable": ("database", "outage"),
    "db.migrations_current": ("database", "api-errors"),
    "db.connections_headroom": ("database",),
    "db.no_long_transactions": ("database", "slow"),
    "db.slow_queries": ("slow",),
    "api.latency": ("slow",),
    "backend.health_memory": ("slow",),
    "backend.health": ("outage",),
    "frontend.root": ("outage", "frontend"),
    "frontend.spa_routes": ("frontend",),
    "frontend.assets": ("frontend",),
    "api.no_server_errors": ("api-errors",),
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
    "tls.cert_expiry": ("outage",),
}


@dataclass(frozen=True)
class CoverageRow:
    """One diagnosis section of the runbook and the checks that cover it."""

    section: Section
    checks: tuple[str, ...]


def topics_for(check_id: str) -> tuple[str, ...]:
    return CHECK_TOPICS.get(check_id.split("[")[0], ())


def section_topics(section: Section) -> set[str]:
    title = f" {section.title.lower()} "
    return {topic for topic, words in TOPICS.items() if any(word in title for word in words)}


def matching_section(runbook: Runbook, check_id: str) -> Section | None:
    """The diagnosis section whose heading names the check's first matching topic."""
    for topic in topics_for(check_id):
        for section in diagnosis_sections(runbook):
            if topic in section_topics(section):
                return section
    return None


def coverage(runbook: Runbook, checks: Mapping[str, str | None]) -> list[CoverageRow]:
    """Each diagnosis section with the checks covering it: by their `runbook` marker's anchor, or by topic."""
    rows = []
    for section in diagnosis_sections(runbook):
        topics = section_topics(section)
        covering = sorted(
            check_id
            for check_id, anchor in checks.items()
            if anchor == section.anchor or (anchor is None and topics & set(topics_for(check_id)))
        )
        rows.append(CoverageRow(section, tuple(covering)))
    return rows


def format_coverage(rows: list[CoverageRow]) -> list[str]:
    """Plain lines for the terminal: each section with its checks, then the uncovered ones."""
    lines = [f"{row.section.title} (#{row.section.anchor}): {', '.join(row.checks) or 'NOT COVERED'}" for row in rows]
    uncovered = [row.section.title for row in rows if not row.checks]
    lines.append(f"uncovered: {', '.join(uncovered)}" if uncovered else "every diagnosis section is covered")
    return lines
