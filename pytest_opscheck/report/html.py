"""The HTML report, through pytest-html: a Severity column, a summary, resolution and evidence extras.

Everything that came from a target is escaped here; pytest-html inserts these strings as HTML.
"""

from __future__ import annotations

from html import escape
from typing import Any

import pytest

from ..causes import attributed, root_causes
from ..context import SweepContext
from ..severity import LABELS, Severity
from .record import CheckRecord, Summary, record_of

DEFAULT_PATH = "opscheck-report.html"
STYLE = (
    "<style>#opscheck-summary table{border-collapse:collapse;margin:6px 0}"
    "#opscheck-summary td,#opscheck-summary th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
    ".opscheck-verdict{font-size:1.2em;font-weight:bold}"
    ".opscheck-extra pre{background:#f6f8fa;color:#111;padding:6px;white-space:pre-wrap}"
    ".opscheck-caused-by{font-style:italic}</style>"
)


def severity_cell(record: CheckRecord | None) -> str:
    text = record.severity if record else ""
    return f'<td class="col-severity">{escape(text)}</td>'


def check_id_cell(record: CheckRecord | None) -> str:
    return f'<td class="col-check">{escape(record.check_id) if record else ""}</td>'


def extras_html(record: CheckRecord, targets: dict[Severity, str]) -> str:
    """The resolution steps and evidence of one check, escaped, as one block."""
    parts = [
        f'<div class="opscheck-extra"><p><strong>{escape(record.severity)}'
        f" {escape(LABELS[record.level])}</strong> — {escape(targets[record.level])}</p>",
    ]
    if record.message:
        parts.append(f'<p class="opscheck-cause">{escape(record.message)}</p>')
    if record.caused_by:
        parts.append(f'<p class="opscheck-caused-by">caused by {escape(record.caused_by)}: fix that first</p>')
    if record.resolution and record.outcome == "failed":
        parts.append(f'<h4>Resolution</h4><pre class="opscheck-resolution">{escape(record.resolution)}</pre>')
    for title, text in record.evidence.items():
        parts.append(f'<h4>{escape(title)}</h4><pre class="opscheck-evidence">{escape(text)}</pre>')
    parts.append("</div>")
    return "".join(parts)


def summary_html(summary: Summary) -> str:
    """The verdict and a table of counts by severity, for the top of the report."""
    rows = []
    for level in Severity:
        counts = summary.counts[level.name]
        rows.append(
            f"<tr><td>{level.name} {LABELS[level]}</td><td>{escape(summary.targets[level])}</td>"
            f"<td>{counts['failed']}</td><td>{counts['passed']}</td><td>{counts['skipped']}</td></tr>"
        )
    escalation = (
        "<h3>Escalation</h3><ol class=opscheck-escalation>"
        + "".join(f"<li>{escape(step)}</li>" for step in summary.escalation)
        + "</ol>"
        if summary.escalation
        else ""
    )
    coverage = (
        "<h3>Runbook coverage</h3><ul class=opscheck-coverage>"
        + "".join(f"<li>{escape(line)}</li>" for line in summary.coverage)
        + "</ul>"
        if summary.coverage
        else ""
    )
    failed = "".join(
        f"<li><strong>{escape(r.severity)}</strong> {escape(r.check_id)}: "
        f"{escape(f'caused by {r.caused_by}' if r.caused_by else r.message)}</li>"
        for r in summary.failed
    )
    return (
        f'{STYLE}<div id="opscheck-summary"><h2>opscheck</h2><p class="opscheck-verdict">{escape(summary.verdict)}</p>'
        "<table><tr><th>Severity</th><th>Response</th><th>Failed</th><th>Passed</th><th>Skipped</th></tr>"
        f"{''.join(rows)}</table>"
        f"{'<ol class=opscheck-failures>' + failed + '</ol>' if failed else ''}"
        f"{escalation}{coverage}</div>"
    )


class HtmlReport:
    """pytest-html hooks; registered only when pytest-html is active (`enable`)."""

    def __init__(self, ctx: SweepContext) -> None:
        self.ctx = ctx

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report: Any) -> None:
        report.title = "opscheck report"

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells.insert(1, '<th class="sortable" data-column-type="severity">Severity</th>')
        cells.insert(2, '<th class="sortable" data-column-type="check">Check</th>')

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        record = record_of(report)
        cells.insert(1, severity_cell(record))
        cells.insert(2, check_id_cell(record))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str]) -> None:
        if self.ctx.summary is not None:
            prefix.append(summary_html(self.ctx.summary))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = record_of(report)
        if record is None or not (record.outcome == "failed" or record.evidence):
            return
        # Checks that others depend on report first: the root cause among those reported so far.
        others = [r for r in self.ctx.records.values() if r.nodeid != record.nodeid]
        cause = root_causes([*others, record], self.ctx.reach, self.ctx.snapshots).get(record.check_id)
        if cause:
            record = attributed([record], {record.check_id: cause})[0]
        from pytest_html import extras

        html = extras.html(extras_html(record, self.ctx.response_targets))
        report.extras = [*getattr(report, "extras", []), html]  # type: ignore[attr-defined]


def enable(config: pytest.Config, ctx: SweepContext) -> None:
    """Register the HTML report when pytest-html is installed; written by default, self-contained."""
    if not config.pluginmanager.hasplugin("html") or hasattr(config, "workerinput"):
        return
    if not config.getoption("htmlpath", None):
        config.option.htmlpath = DEFAULT_PATH
        config.option.self_contained_html = True
    config.pluginmanager.register(HtmlReport(ctx), "opscheck-html")
