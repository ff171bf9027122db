"""The terminal under ``--opscheck``: the header, a quiet progress line, each check by id under ``-v``, and the
closing ``opscheck`` section, which is the report (pytest's FAILURES section would only repeat its causes).
"""

from __future__ import annotations

import os
import re
import textwrap
from typing import Any

import pytest

from ..context import SweepContext
from ..model import LABELS, CheckRecord, Summary, base_id
from .paste import COMMANDS, decisive_lines, paste_ready
from .paths import moved_rootdir_line, write_errors

DEFAULT_TBSTYLE = "auto"  # pytest's --tb default; any other value was asked for and is kept
DEFAULT_REPORTCHARS = "fE"  # pytest's -r default


def heading(record: CheckRecord) -> str:
    """ "P1 CRITICAL" padded, so that the check ids of a list line up."""
    return f"{record.severity} {LABELS[record.level]:<8}"


def wait_lines(summary: Summary, seconds: float | None) -> list[str]:
    """What ``--opscheck-wait`` did: each check it retried, how many runs, and when it became ready or why not."""
    records = [*summary.failed, *summary.passed_records]
    retried = sorted((r for r in records if r.attempts > 1 or r.gave_up),
                     key=lambda r: (r.level, r.check_id))
    if seconds is None:
        return []
    if not retried:
        return [f"wait ({seconds:g} s): no check needed a retry"]
    plural = "check" if len(retried) == 1 else "checks"
    lines = [f"wait ({seconds:g} s): retried {len(retried)} {plural}"]
    for r in retried:
        runs = f"{r.attempts} attempts" if r.attempts > 1 else "1 attempt"
        if r.outcome == "passed":
            lines.append(f"  ready: {r.check_id} after {r.ready_after:g} s ({runs})")
        elif r.gave_up:
            lines.append(f"  not retried: {r.check_id}: {r.gave_up} ({runs})")
        else:
            lines.append(f"  still failing: {r.check_id} when the wait ended ({runs})")
    return lines


WIDTH = 80  # the first screen is read on an 80-column terminal (a phone's SSH client, a tmux pane)
EVIDENCE_ROWS = 2  # rows one evidence line may take, wrapped, before it is cut


def _wrapped(text: str, first: str, rest: str, rows: int) -> list[str]:
    """`text` after the prefix `first`, wrapped at `WIDTH` with `rest` before the next rows, at most `rows` rows
    (the last one cut with an ellipsis)."""
    # A word longer than a row (a path, a URL) overflows it whole: cut, it could not be pasted.
    lines = textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=rest, break_long_words=False,
                          break_on_hyphens=False) or [first.rstrip()]
    if len(lines) > rows:
        lines = lines[:rows]
        lines[-1] = lines[-1][: WIDTH - 1].rstrip() + "…"
    return lines


def root_lines(record: CheckRecord, target: str) -> list[str]:
    """A root cause (or a failure whose root did not run here): its heading, its cause, its decisive evidence
    lines, its resolution with the values of this failure written in."""
    lines = [f"{heading(record)} FAILED {record.check_id} — {target}"]
    lines += _wrapped(record.message, "    cause: ", "      ", 4)
    if record.caused_by:  # its root did not run in this selection
        lines += _wrapped(f"{record.caused_by} (not run here: select it too to see the root)",
                          "    follows from: ", "      ", 2)
    for line in decisive_lines(record):
        lines += _wrapped(line, "    evidence: ", "      ", EVIDENCE_ROWS)
    resolution = paste_ready(record) if record.resolution or record.evidence.get(COMMANDS) else ""
    if resolution:
        lines.append("    resolution:")
        lines += resolution_lines(resolution, "      ")
    return lines


def resolution_lines(text: str, indent: str) -> list[str]:
    """A resolution for an 80-column screen, line for line as it was written: a prose line (at the left margin)
    longer than a row wraps under itself; an indented line (a command, a list item's continuation) and a line
    holding a command after two spaces (`Ask it:  curl ...`) stay whole, to be pasted."""
    out: list[str] = []
    for line in text.splitlines():
        words = line.strip()
        if words and not line[:1].isspace() and len(indent + words) > WIDTH and not re.search(r":  \S", words):
            out.extend(_wrapped(words, indent, indent + "  ", 99))
        else:
            out.append(f"{indent}{line}".rstrip())
    return out


def _keys(records: list[CheckRecord]) -> str:
    """The config keys behind skips, compact: `auth.login_path` and `auth.probe_path` are `auth`."""
    keys = sorted({(r.skipped.key if r.skipped else r.message.removeprefix("not configured: ")).split(".")[0]
                   for r in records})
    return ", ".join(keys)


def gap_lines(summary: Summary) -> list[str]:
    """What the sweep did not check, once each: the keys not configured, the variables unset, the checks
    switched off."""
    lines: list[str] = []
    missing = summary.not_configured
    if missing:
        plural = "check" if len(missing) == 1 else "checks"
        lines += _wrapped(f"{_keys(missing)}; switch off with disable=[...]",
                          f"not configured ({len(missing)} {plural} skipped): ", "  ", 3)
    unset = summary.unset
    if unset:
        names = sorted({f"${{{r.skipped.variable}}} ({r.skipped.key})" for r in unset if r.skipped})
        plural = "check" if len(unset) == 1 else "checks"
        lines += _wrapped(", ".join(names) + "; --opscheck-strict refuses them",
                          f"variable unset ({len(unset)} {plural} not run): ", "  ", 3)
    disabled = summary.disabled
    if disabled:
        ids = ", ".join(sorted({r.check_id for r in disabled}))
        lines += _wrapped(ids, f"disabled ({len(disabled)}): ", "  ", 2)
    return lines


def change_lines(summary: Summary) -> list[str]:
    """What changed since the last green sweep, newest first, one line each."""
    if not summary.changes:
        return []
    since = f" ({summary.last_green})" if summary.last_green else " (no green sweep on record)"
    lines = [f"changed since the last green sweep{since}:"]
    newest = sorted(summary.changes, key=lambda c: c.at or "", reverse=True)
    for change in newest:
        when = f" ({change.at})" if change.at else ""
        text = f"{change.what}: {change.before or '-'} → {change.after or '-'}{when}"
        lines += _wrapped(text, "  ", "    ", 1)
    return lines


def summary_lines(summary: Summary, wait: float | None = None, written: tuple[str, ...] = ()) -> list[str]:
    """The section's lines: the root causes worst first, each with its cause, evidence and paste-ready steps;
    the consequences one line each, pointing at their root; what the wait did; the gaps; the verdict and,
    under it, what changed since the last green sweep."""
    lines: list[str] = []
    shown = {r.check_id for r in summary.failed} | {base_id(r.check_id) for r in summary.failed}
    # A failure whose root did not run here (deselected by -k or -m) is shown in full: its root says nothing.
    consequences = [r for r in summary.failed if r.caused_by and r.caused_by in shown]
    for record in summary.failed:
        if record not in consequences:
            lines += [*root_lines(record, summary.targets[record.level]), ""]
    for record in consequences:
        lines += _wrapped(f"FAILED {record.check_id} — caused by {record.caused_by}", f"{heading(record)} ",
                          "      ", 1)
    if consequences:
        lines.append("")
    for record in summary.passed_records:
        if "warning" in record.evidence:
            lines.append(f"{record.severity} passed {record.check_id}, with a warning: {record.evidence['warning']}")
    lines.extend(wait_lines(summary, wait))
    lines.extend(gap_lines(summary))
    lines.extend(f"report not written: {line}" for line in written)
    lines.append(summary.verdict)
    lines.extend(change_lines(summary))
    if summary.no_verdict:
        lines.append("nothing was checked: exit status 5 (a gate never passes on nothing)")
    if summary.escalation:
        lines.append("escalation:")
        lines.extend(f"  {step}" for step in summary.escalation)
    return lines


def targets_swept(ctx: SweepContext) -> list[tuple[str, str]]:
    """What the sweep is pointed at, secrets redacted: (what, where) for each configured target."""
    s = ctx.settings
    swarm = getattr(s, "swarm_stack", None)
    stack = (
        ("swarm stack", swarm) if swarm else ("compose", s.compose_project or s.compose_file)
    )
    rows = [
        stack,
        ("backend", s.backend_url),
        ("frontend", s.frontend_url),
        ("db", s.database_url),
        ("ws", s.websocket_url),
        ("smtp", s.smtp.host if s.smtp else None),
    ]
    if stack[1]:
        rows.append(("engine", os.environ.get("DOCKER_HOST") or "local socket (unix:///var/run/docker.sock)"))
    return [(name, ctx.redact(str(value))) for name, value in rows if value]


def header_lines(ctx: SweepContext) -> list[str]:
    """What the sweep is pointed at: the config, the timeout, the gate, the targets."""
    s = ctx.settings
    env = f" [env {s.env_name}]" if s.env_name else ""
    targets = [f"{name} {where}" for name, where in targets_swept(ctx)]
    return [
        f"opscheck: config {s.source}{env}, timeout {s.timeout:g}s, fail on {ctx.fail_on.name} and above",
        "opscheck targets: " + (", ".join(targets) or "none configured"),
    ]


def check_status(report: pytest.TestReport, check_id: str, severity: str) -> tuple[str, str, str] | None:
    """How a check's report shows in the progress line and under ``-v`` (by its id); None leaves it to pytest."""
    if hasattr(report, "wasxfail"):
        return None
    if report.failed and report.when in ("setup", "call"):
        return "failed", "F", f"FAILED {severity} {check_id}"
    if report.skipped:
        return "skipped", "s", f"SKIPPED {severity} {check_id}"
    if report.passed and report.when == "call":
        return "passed", ".", f"PASSED {severity} {check_id}"
    return None


class TerminalReport:
    """The report header, the quiet progress line, and the closing ``opscheck`` section."""

    def __init__(self, ctx: SweepContext) -> None:
        self.ctx = ctx
        self.sweep = True  # False under --collect-only and --opscheck-coverage: nothing to report on
        self.deselected = 0

    def pytest_report_header(self) -> list[str]:
        return header_lines(self.ctx)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.sweep = not (session.config.option.collectonly or session.config.getoption("opscheck_coverage"))
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        if session.config.get_verbosity() == 0:
            # Checks run worst first, across files: one line of letters, not a file name each time it changes.
            reporter.showfspath = False
        if session.config.option.reportchars == DEFAULT_REPORTCHARS:
            reporter.reportchars = reporter.reportchars.replace("f", "")  # the opscheck section lists them
        # -rs: each skipped check on its own line, labelled by its own severity and id (pytest's folding would
        # label every line of a file with the first skipped check's).
        reporter.foldskipped = False

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += len(items)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # After every report is made (its longrepr kept whole for the HTML log and --tb), before the summary:
        # no FAILURES section repeating the causes. Errors (a collection error, a broken conftest) keep theirs.
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        errors = reporter.stats.get("error") if reporter is not None else None
        if self.sweep and not errors and session.config.option.tbstyle == DEFAULT_TBSTYLE:
            session.config.option.tbstyle = "no"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.ctx.coverage:
            terminalreporter.section("opscheck runbook coverage")
            for line in self.ctx.coverage:
                terminalreporter.line(line)
        summary = self.ctx.summary
        if summary is None or not self.sweep:
            return
        terminalreporter.section("opscheck")
        moved = moved_rootdir_line(terminalreporter.config)  # said even under -q, which has no header
        if moved:
            for line in _wrapped(moved, "", "  ", 4):
                terminalreporter.line(line, yellow=True)
        written = tuple(write_errors(terminalreporter.config))
        if not self.ctx.records:
            for line in written:
                terminalreporter.line(f"report not written: {line}", red=True)
            terminalreporter.line(self.nothing_selected(terminalreporter.config), yellow=True, bold=True)
            return
        wait = terminalreporter.config.getoption("opscheck_wait")
        for line in summary_lines(summary, wait, written):
            terminalreporter.line(line, **self.markup(line, summary))

    def nothing_selected(self, config: pytest.Config) -> str:
        if not self.deselected:
            return "NO VERDICT: no check collected: exit status 5 (a gate never passes on nothing)"
        how = [f"-m {config.option.markexpr!r}" if config.option.markexpr else "",
               f"-k {config.option.keyword!r}" if config.option.keyword else ""]
        by = " and ".join(h for h in how if h) or "the selection"
        return (
            f"NO VERDICT: no check selected ({self.deselected} deselected by {by}): exit status 5. "
            "Select by severity with -m P1 or -m 'p1 or p2', by check id with -k db.reachable"
        )

    @staticmethod
    def markup(line: str, summary: Summary) -> dict[str, bool]:
        if line == summary.verdict:
            return {"bold": True, "red": bool(summary.failed), "green": not summary.failed and not summary.no_verdict,
                    "yellow": summary.no_verdict}
        if line.startswith("report not written"):
            return {"red": True}
        return {}
