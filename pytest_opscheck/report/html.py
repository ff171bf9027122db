"""The HTML report, through pytest-html 4's documented surface only: the first screen for on-call
(`html_summary`, through ``pytest_html_results_summary``), the title (``pytest_html_report_title``), a
Severity and a Check column (``pytest_html_results_table_header``/``_row``), each check's resolution and
evidence in its row (``report.extras`` with ``pytest_html.extras.html``), always one self-contained file.

What this cannot do through those hooks, it does not do: pytest-html's rows come in its own order (failures
first, then as the checks ran) and its outcome filters count pytest's outcomes (a check that failed in its
fixture is an Error to pytest); the first screen, built from the summary once root causes are known, is where
the failures come root causes first and every check that failed counts as failed. A check's row says Failed.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

import pytest

from ..context import SweepContext
from ..model import CheckRecord, record_of
from .files import sink_of
from .html_summary import coverage_html, extras_html, summary_html
from .paths import DEFAULT_HTML
from .terminal import targets_swept


def severity_cell(record: CheckRecord | None) -> str:
    text = record.severity if record else ""
    return f'<td class="col-severity">{escape(text)}</td>'


def check_id_cell(record: CheckRecord | None) -> str:
    return f'<td class="col-check">{escape(record.check_id) if record else ""}</td>'


class HtmlReport:
    """pytest-html hooks; registered only when pytest-html is active (`enable`)."""

    def __init__(self, ctx: SweepContext, config: pytest.Config, coverage_only: bool = False) -> None:
        self.ctx = ctx
        self.sink = sink_of(config, ctx)  # what came from targets, bounded and redacted once more
        self.coverage_only = coverage_only  # --opscheck-coverage: the listing, no verdict

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
        if record is not None and record.outcome == "failed" and ">Error<" in cells[0]:
            # A check whose fixture could not reach its target failed, as the terminal and JUnit say.
            cells[0] = '<td class="col-result">Failed</td>'
        cells.insert(1, severity_cell(record))
        cells.insert(2, check_id_cell(record))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str]) -> None:
        if self.coverage_only:
            prefix.append(coverage_html([self.ctx.redact(line) for line in self.ctx.coverage]))
            return
        sweep = self.ctx.summary
        if sweep is None:
            return
        sink = self.sink
        seconds = (datetime.now() - self.ctx.started).total_seconds()
        env = self.ctx.settings.env_name or "default"
        targets = [("environment", f"{env} ({self.ctx.settings.source})"), *targets_swept(self.ctx)]
        targets = [(name, sink.text(where, 2_000)) for name, where in targets]
        prefix.append(summary_html(sink.summary(sweep), targets, seconds, self.ctx.fail_on))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """A check's resolution and evidence as an extra of its row (pytest-html reads `report.extras` when the
        check's teardown is reported, on the controller under xdist)."""
        record = record_of(report)
        if record is None or not (record.outcome == "failed" or record.evidence):
            return
        from pytest_html import extras

        html = extras.html(extras_html(self.sink.record(record), self.ctx.response_targets))
        report.extras = [*getattr(report, "extras", []), html]  # type: ignore[attr-defined]


def enable(config: pytest.Config, ctx: SweepContext) -> None:
    """Register the HTML report when pytest-html is installed: written by default on a sweep and on a coverage
    listing, and always self-contained (an uploaded CI artifact renders as it did here)."""
    if not config.pluginmanager.hasplugin("html") or hasattr(config, "workerinput"):
        return
    if not config.getoption("htmlpath", None):
        if config.option.collectonly:
            return  # nothing swept, nothing listed: no report unless asked for
        config.option.htmlpath = DEFAULT_HTML
    config.option.self_contained_html = True
    report = HtmlReport(ctx, config, bool(config.getoption("opscheck_coverage")))
    config.pluginmanager.register(report, "opscheck-html")
