"""A Markdown post-mortem draft, after the runbook's Post-Mortem Template, filled from the sweep's failures.

Its timeline starts from typed facts, never from text read back: the containers the failures' records name
as deployed before the sweep (`record.deploys`), and what changed since the last green sweep
(`Summary.changes`, `Summary.last_green`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from ..catalogue import matching_section
from ..model import LABELS, RESPONSE_TARGETS, Change, CheckRecord, Severity
from ..runbook import Runbook, escalate_after, escalation, severity_targets

_TITLE_LIMIT = 120
_LINE_LIMIT = 200
_COMMANDS_SHOWN = 3
_DEPLOYS_SHOWN = 10
_CHANGES_SHOWN = 10
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _one_line(text: str, limit: int = _LINE_LIMIT) -> str:
    """`text` on one line (a newline cannot break the draft's structure), cut at `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _code(text: str) -> str:
    """An inline code span holding `text`, whatever backticks it contains."""
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _clock(moment: datetime) -> str:
    return f"{moment:%H:%M:%S}"


def _span(delta: timedelta) -> str:
    """A duration as people say it: "45 s", "12 min", "2 h 05 min"."""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _parse_span(text: str) -> timedelta | None:
    """ "30 minutes", "1 hour", "15 min" as a timedelta; None when it is not a duration."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]+)", text.strip().lower())
    if match is None or match.group(2)[0] not in _UNITS:
        return None
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)[0]])


def _step(resolution: str) -> str:
    """A resolution as one action: its commands (fenced code, comments left out), else its first line."""
    commands: list[str] = []
    fenced = False
    for line in resolution.splitlines():
        if re.match(r"^\s*(```|~~~)", line):
            fenced = not fenced
        elif fenced and line.strip() and not line.lstrip().startswith("#"):
            commands.append(line.strip())
    if commands:
        more = f" (+{len(commands) - _COMMANDS_SHOWN} more)" if len(commands) > _COMMANDS_SHOWN else ""
        return _code(_one_line("; ".join(commands[:_COMMANDS_SHOWN]))) + more
    for line in resolution.splitlines():
        text = re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", line).strip()
        if text and not text.startswith("Runbook:"):
            return _one_line(text)
    return "investigate the failure and write the fix into the runbook"


def _runbook_link(record: CheckRecord, runbook: Runbook | None) -> str:
    """Where the steps come from: the record's own "Runbook:" line, else the runbook's matching section."""
    own = re.search(r"^Runbook: (.+)$", record.resolution, re.M)
    if own:
        return f"(runbook: {own.group(1).strip()})"
    section = matching_section(runbook, record.topics) if runbook else None
    return f"(runbook: {section.title} #{section.anchor})" if section else ""


def _roots(failed: list[CheckRecord]) -> dict[str, str | None]:
    """Each failed check's root cause (following chains), None for a check that is its own root."""
    attributed = {r.check_id: r.caused_by for r in failed if r.caused_by}
    roots: dict[str, str | None] = {}
    for record in failed:
        seen = {record.check_id}
        root = attributed.get(record.check_id)
        while root and root not in seen and attributed.get(root):
            seen.add(root)
            root = attributed[root]
        roots[record.check_id] = root if root and root != record.check_id else None
    return roots


def render_postmortem(
    records: list[CheckRecord],
    started: datetime,
    now: datetime,
    first_failures: dict[str, datetime],
    runbook: Runbook | None,
    redact: Callable[[str], str],
    *,
    changes: Sequence[Change] = (),
    last_green: str | None = None,
) -> str:
    """The draft: title from the worst failure, date, duration so far, severity, impact, timeline (from the
    deploys and the changes since the last green sweep), root-cause candidates (from the records'
    `caused_by`), action items, and placeholders for what people must fill in. `first_failures` is keyed by
    node id or check id. Every string passes through `redact`."""

    def text(value: str, limit: int = _LINE_LIMIT) -> str:
        return _one_line(redact(value), limit)

    def first(record: CheckRecord) -> datetime:
        return first_failures.get(record.nodeid) or first_failures.get(record.check_id) or now

    failed = [r for r in records if r.outcome == "failed"]
    root_of = _roots(failed)
    failed.sort(key=lambda r: (root_of[r.check_id] is not None, r.level, first(r), r.check_id))
    failing = {r.check_id for r in failed}
    own_roots = [r for r in failed if root_of[r.check_id] is None]
    outside_roots = sorted({root for root in root_of.values() if root and root not in failing})
    worst = min((r.level for r in failed), default=None)
    detected = min((first(r) for r in failed), default=started)
    section = matching_section(runbook, failed[0].topics) if runbook and failed else None
    title = f"{failed[0].check_id}: {failed[0].message}" if failed else "no failing check"

    lines = [
        f"## Incident: {text(f'{section.title} — {title}' if section else title, _TITLE_LIMIT)}",
        f"**Date**: {detected:%Y-%m-%d}",
        f"**Duration**: {_span(now - detected)} so far (detected {_clock(detected)}, draft {_clock(now)})",
        f"**Severity**: {_severity(worst, runbook)}",
        f"**Impact**: {_impact(failed, text)}",
        "",
        "### Timeline",
        # The timeline starts from what the failures are seen against: deploys, and changes since the last green.
        *_before(failed, changes, last_green, started, text),
        f"- {_clock(started)} - opscheck sweep started",
    ]
    if failed:
        lines.append(f"- {_clock(detected)} - Incident detected")
    for record in sorted(failed, key=lambda r: (first(r), r.level, r.check_id)):
        lines.append(f"- {_clock(first(record))} - {text(record.check_id)} failed: {text(record.message)}")
    after = escalate_after(runbook) if runbook and worst == Severity.P1 else None
    due = _parse_span(after) if after else None
    if after and due:
        lines.append(f"- {_clock(detected + due)} - Escalation due if still unresolved (P1 after {text(after)})")
    lines += [
        "- HH:MM - Team notified",
        "- HH:MM - Root cause identified",
        "- HH:MM - Fix deployed",
        "- HH:MM - Service restored",
        "",
        "### Root Cause",
        "Candidates, root checks first: [confirm one and explain it]" if failed else "[Detailed explanation]",
    ]
    for record in own_roots:
        explains = [text(r.check_id) for r in failed if root_of[r.check_id] == record.check_id]
        then = f" — explains: {', '.join(explains)}" if explains else ""
        lines.append(f"- **{text(record.check_id)}** ({record.severity}): {text(record.message)}{then}")
    for outside in outside_roots:
        explains = [text(r.check_id) for r in failed if root_of[r.check_id] == outside]
        lines.append(f"- **{text(outside)}** (attributed; not failing in this sweep) — explains: {', '.join(explains)}")
    for record in failed:
        cause = root_of[record.check_id]
        if cause:
            what = f"{text(record.check_id)} ({record.severity}): {text(record.message)}"
            lines.append(f"- {what} (caused by {text(cause)})")
    lines += ["", "### Resolution", "[What was done to fix it]", "", "### Action Items"]
    for record in failed:
        root = root_of[record.check_id]
        after_root = f" (after {text(root)})" if root else ""
        step = text(_step(redact(record.resolution)), 2 * _LINE_LIMIT)
        link = text(_runbook_link(record, runbook))
        step += f" {link}" if link else ""
        lines.append(f"- [ ] {text(record.check_id)}{after_root}: {step} - Owner - Due date")
    if not failed:
        lines.append("- [ ] Action 1 - Owner - Due date")
    steps = escalation(runbook) if runbook and worst == Severity.P1 else []
    if steps:
        lines += ["", "### Escalation", *(f"{i}. {text(step)}" for i, step in enumerate(steps, start=1))]
    lines += ["", "### Lessons Learned", "- What went well: [fill in]", "- What could be improved: [fill in]", ""]
    return redact("\n".join(lines))


def _local(moment: str | None) -> datetime | None:
    """An ISO 8601 time as the draft's naive local clock; None when absent or unreadable."""
    if not moment:
        return None
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return None
    return parsed.astimezone().replace(tzinfo=None) if parsed.tzinfo else parsed


def _change_text(change: Change) -> str:
    before = change.before if change.before is not None else "(none)"
    after = change.after if change.after is not None else "(gone)"
    return f"changed since the last green sweep: {change.what}: {before} → {after}"


def _before(
    failed: list[CheckRecord], changes: Sequence[Change], last_green: str | None, started: datetime,
    text: Callable[[str], str],
) -> list[str]:
    """Timeline entries from before the sweep, oldest first: the last green sweep, each change since (the
    newest few), and the containers the failures' records name as deployed before the sweep (the last few)."""
    entries: list[tuple[datetime, int, str]] = []
    green = _local(last_green)
    if green is not None:
        entries.append((green, 0, "last green sweep (verdict OK)"))
    undated: list[str] = []
    for change in list(changes)[:_CHANGES_SHOWN]:  # newest first
        at = _local(change.at)
        if at is None:
            undated.append(_change_text(change))
        else:
            entries.append((at, 1, _change_text(change)))
    seen: dict[str, tuple[datetime, int, str]] = {}
    for record in failed:
        for deploy in record.deploys:
            at = _local(deploy.created)
            if at is None or at > started or deploy.container in seen:
                continue
            seen[deploy.container] = (at, 2, f"{deploy.container} created from {deploy.image}")
    entries += sorted(seen.values())[-_DEPLOYS_SHOWN:]
    lines = [
        f"- {at:%H:%M:%S}" + ("" if at.date() == started.date() else f" ({at:%Y-%m-%d})") + f" - {text(what)}"
        for at, _, what in sorted(entries)
    ]
    return lines + [f"- time unknown - {text(what)}" for what in undated]


def _severity(worst: Severity | None, runbook: Runbook | None) -> str:
    if worst is None:
        return "none (no check failed)"
    own = severity_targets(runbook).get(worst.name) if runbook else None
    target = f"response time: {own}" if own else RESPONSE_TARGETS[worst]
    return f"{worst.name} - {LABELS[worst].title()} ({target})"


def _impact(failed: list[CheckRecord], text: Callable[[str], str]) -> str:
    if not failed:
        return "none: every check that ran passed"
    by_level = [
        f"{level.name}: {', '.join(text(r.check_id) for r in failed if r.level == level)}"
        for level in Severity
        if any(r.level == level for r in failed)
    ]
    plural = "check" if len(failed) == 1 else "checks"
    return f"{len(failed)} failing {plural} ({'; '.join(by_level)}). [Describe the impact on users]"
