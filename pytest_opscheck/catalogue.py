"""Runbook topics, matched to a runbook's own diagnosis headings: the runbook links and coverage of the checks.

Each check declares its topics on itself (`@pytest.mark.topics("database", "outage")`); this module knows
the words that name each topic in a heading."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .runbook.parse import Runbook, Section, diagnosis_sections, plain

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

# The runbook format coverage reads (README, "The runbook format"), said where a runbook has none of it.
NO_DIAGNOSIS = (
    "no diagnosis section found in the runbook: an incident is a heading with a Diagnosis part under it, as a "
    "sub-heading (### Diagnosis) or a bold label (**Diagnosis:**), or with both Symptoms and Resolution parts; "
    "its commands in fenced code blocks (```), its steps numbered (1. ...)"
)
# What a check declares for coverage: its `runbook` marker's reference (or None) and its topics.
Declared = tuple[str | None, tuple[str, ...]]


@dataclass(frozen=True)
class CoverageRow:
    """One diagnosis section of the runbook and the checks that cover it (none: uncovered)."""

    section: Section
    checks: tuple[str, ...]


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
    return _title_score(section.title, topic)


def _title_score(title: str, topic: str) -> int:
    heading = " ".join(_words(title))
    return max((size for size, phrase in _phrases(topic) if phrase.search(heading)), default=0)


@functools.cache
def _phrases(topic: str) -> tuple[tuple[int, re.Pattern[str]], ...]:
    """`_names` as one pattern per keyword of `topic`, over the heading's words joined by spaces."""
    found = []
    for words in map(_words, TOPICS.get(topic, ())):
        parts = [re.escape(w) + ("[a-z0-9]*" if len(w) >= 4 else "") for w in words]
        found.append((len(words), re.compile(r"(?<![a-z0-9])" + " ".join(parts) + r"(?![a-z0-9])")))
    return tuple(found)


def section_topics(section: Section) -> set[str]:
    """The topics the section's heading names."""
    return {topic for topic in TOPICS if topic_score(section, topic)}


def matching_section(runbook: Runbook, topics: tuple[str, ...]) -> Section | None:
    """The diagnosis section whose heading best names a check's closest topic (first in the runbook on a tie)."""
    for topic in topics:
        found = _best_section(runbook, topic)
        if found is not None:
            return found
    return None


def _best_section(runbook: Runbook, topic: str) -> Section | None:
    """The section best naming `topic`, scored once per runbook (every check of the topic asks)."""
    best: dict[str, Section | None] = runbook.memo.setdefault("best", {})
    if topic not in best:
        sections = diagnosis_sections(runbook)
        score, index = max(((topic_score(s, topic), -i) for i, s in enumerate(sections)), default=(0, 0))
        best[topic] = sections[-index] if score else None
    return best[topic]


def _anchor(reference: str) -> str:
    """The anchor of a `runbook` marker's reference: `docs/runbook.md#a`, `#a` and `a` are all `a`."""
    return reference.rpartition("#")[2]


def coverage(runbook: Runbook, checks: Mapping[str, Declared]) -> list[CoverageRow]:
    """Each diagnosis section with the checks covering it: a check with an explicit `runbook` anchor covers
    that section only; one without covers every section whose heading names one of its declared topics."""
    rows = []
    for section in diagnosis_sections(runbook):
        topics = section_topics(section)
        covering = dict.fromkeys(
            check_id.partition("[")[0]
            for check_id, (reference, own) in sorted(checks.items())
            if (_anchor(reference) == section.anchor if reference else topics.intersection(own))
        )
        rows.append(CoverageRow(section, tuple(covering)))
    return rows


def format_coverage(rows: list[CoverageRow]) -> list[str]:
    """Plain lines for the terminal: each section with its checks, then the uncovered sections."""
    lines = [f"{row.section.title} (#{row.section.anchor}): {', '.join(row.checks) or 'NOT COVERED'}" for row in rows]
    uncovered = [f"{row.section.title} (#{row.section.anchor})" for row in rows if not row.checks]
    if not rows:
        lines.append(NO_DIAGNOSIS)
    elif uncovered:
        lines.append(f"uncovered: {', '.join(uncovered)}")
    else:
        lines.append("every diagnosis section is covered")
    return lines
