"""The closing ``opscheck`` section of the terminal report."""

from __future__ import annotations

import textwrap

from .record import Summary


def summary_lines(summary: Summary) -> list[str]:
    """The section's lines: failures worst first with cause and steps, the gaps, the verdict."""
    lines: list[str] = []
    for record in summary.failed:
        target = summary.targets[record.level]
        if record.caused_by:
            lines.append(f"{record.severity} ({target})  FAILED {record.check_id} — caused by {record.caused_by}")
            continue
        lines.append(f"{record.severity} ({target})  FAILED {record.check_id}")
        lines.append(f"    cause: {record.message}")
        if record.resolution:
            lines.append("    resolution:")
            lines.extend(textwrap.indent(record.resolution.strip(), "      ").splitlines())
        lines.append("")
    for record in summary.passed_records:
        if "warning" in record.evidence:
            lines.append(f"{record.severity} passed {record.check_id}, with a warning: {record.evidence['warning']}")
    waited = [r for r in summary.passed_records if r.attempts > 1]
    for record in waited:
        lines.append(f"ready: {record.check_id} after {record.ready_after:g} s ({record.attempts} attempts)")
    missing = summary.not_configured
    if missing:
        names = ", ".join(sorted({r.message.removeprefix("not configured: ") for r in missing}))
        checks = "check" if len(missing) == 1 else "checks"
        lines.append(f"{len(missing)} {checks} skipped as not configured: {names}")
    lines.append(summary.verdict)
    if summary.escalation:
        lines.append("escalation:")
        lines.extend(f"  {step}" for step in summary.escalation)
    return lines
