"""The closing ``opscheck`` section of the terminal report."""

from __future__ import annotations

import textwrap
from typing import Any

from ..context import SweepContext
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


def header_lines(ctx: SweepContext) -> list[str]:
    """What the sweep is pointed at, secrets redacted: the config, the timeout, the gate, the targets."""
    s = ctx.settings
    env = f" [env {s.env_name}]" if s.env_name else ""
    targets = [
        f"{name} {ctx.redact(value)}"
        for name, value in (
            ("compose", s.compose_project or s.compose_file),
            ("backend", s.backend_url),
            ("frontend", s.frontend_url),
            ("db", s.database_url),
            ("ws", s.websocket_url),
            ("smtp", s.smtp.host if s.smtp else None),
        )
        if value
    ]
    return [
        f"opscheck: config {s.source}{env}, timeout {s.timeout:g}s, fail on {ctx.fail_on.name} and above",
        "opscheck targets: " + (", ".join(targets) or "none configured"),
    ]


class TerminalReport:
    """The report header and the closing ``opscheck`` section."""

    def __init__(self, ctx: SweepContext) -> None:
        self.ctx = ctx

    def pytest_report_header(self) -> list[str]:
        return header_lines(self.ctx)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.ctx.coverage:
            terminalreporter.section("opscheck runbook coverage")
            for line in self.ctx.coverage:
                terminalreporter.line(line)
        summary = self.ctx.summary
        if summary is None or not self.ctx.records:
            return
        terminalreporter.section("opscheck")
        for line in summary_lines(summary):
            terminalreporter.line(line)
