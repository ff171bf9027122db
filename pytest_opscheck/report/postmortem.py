"""A Markdown post-mortem draft, following the runbook's template, filled from the sweep's failures."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ..severity import LABELS
from .record import CheckRecord


def render_postmortem(
    records: list[CheckRecord],
    started: datetime,
    now: datetime,
    first_failures: dict[str, datetime],
    redact: Callable[[str], str],
    escalation: tuple[str, ...] = (),
) -> str:
    """The draft: title, date, duration so far, severity, impact, timeline, root causes, action items."""
    failed = sorted((r for r in records if r.outcome == "failed"), key=lambda r: (r.caused_by is not None, r.level))
    worst = min((r.level for r in failed), default=None)
    roots = [r for r in failed if r.caused_by is None]
    title = f"{roots[0].check_id}: {roots[0].message}" if roots else "no failing check"
    minutes = (now - started).total_seconds() / 60
    lines = [
        f"## Incident: {title}",
        f"**Date**: {started:%Y-%m-%d}",
        f"**Duration**: {minutes:.0f} min so far (first sweep {started:%H:%M:%S}, this draft {now:%H:%M:%S})",
        f"**Severity**: {f'{worst.name} - {LABELS[worst].title()}' if worst else 'none failed'}",
        f"**Impact**: {len(failed)} check(s) failing: " + "; ".join(f"{r.check_id} ({r.severity})" for r in failed),
        "",
        "### Timeline",
        f"- {started:%H:%M:%S} - Incident detected (opscheck sweep started)",
    ]
    for record in sorted(failed, key=lambda r: first_failures.get(r.nodeid, now)):
        at = first_failures.get(record.nodeid, now)
        lines.append(f"- {at:%H:%M:%S} - {record.check_id} failed: {record.message}")
    lines += [
        "- HH:MM - Team notified",
        "- HH:MM - Root cause identified",
        "- HH:MM - Fix deployed",
        "- HH:MM - Service restored",
        "",
        "### Root Cause",
        "Candidates, from the checks that failed on their own:",
    ]
    for root in roots:
        consequences = [r.check_id for r in failed if r.caused_by == root.check_id]
        then = f" (then: {', '.join(consequences)})" if consequences else ""
        lines.append(f"- {root.check_id}: {root.message}{then}")
    lines += ["", "### Resolution", "[What was done to fix it]", "", "### Action Items"]
    for record in roots or failed:
        step = next((line.strip() for line in record.resolution.splitlines() if line.strip()), "investigate")
        lines.append(f"- [ ] {record.check_id}: {step} - Owner - Due date")
    if escalation and worst is not None and worst.name == "P1":
        lines += ["", "### Escalation", *(f"{i}. {step}" for i, step in enumerate(escalation, start=1))]
    lines += ["", "### Lessons Learned", "- What went well", "- What could be improved", ""]
    return redact("\n".join(lines))
