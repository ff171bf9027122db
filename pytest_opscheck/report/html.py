"""The HTML report, through pytest-html: the first screen for on-call (`html_summary`), a Severity and a Check
column, each check's resolution and evidence in its row, always one self-contained file.

What pytest-html counts and orders is made the checks': a check that failed in its fixture (a setup failure to
pytest) shows as Failed, not as an Error, and the rows come root causes first, as on the first screen. Both
are done on the report data pytest-html hands to `pytest_html_report_title`, when the summary is known.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

import pytest

from ..context import SweepContext
from ..model import CheckRecord, Summary, record_of
from .html_summary import coverage_html, extras_html, summary_html
from .paths import DEFAULT_HTML
from .terminal import targets_swept

_EXTRA_START = '<div class="opscheck-extra"'


def severity_cell(record: CheckRecord | None) -> str:
    text = record.severity if record else ""
    return f'<td class="col-severity">{escape(text)}</td>'


def check_id_cell(record: CheckRecord | None) -> str:
    return f'<td class="col-check">{escape(record.check_id) if record else ""}</td>'


def row_order(summary: Summary, nodeids: list[str]) -> list[str]:
    """The report's rows: failures as the summary orders them (root causes first), passed, skipped, the rest."""
    ranked = [r.nodeid for r in [*summary.failed, *summary.passed_records, *summary.skipped]]
    known = set(nodeids)
    first = [n for n in dict.fromkeys(ranked) if n in known]
    return first + [n for n in nodeids if n not in set(first)]


class HtmlReport:
    """pytest-html hooks; registered only when pytest-html is active (`enable`)."""

    def __init__(self, ctx: SweepContext, coverage_only: bool = False) -> None:
        self.ctx = ctx
        self.coverage_only = coverage_only  # --opscheck-coverage: the listing, no verdict
        self.data: Any = None  # pytest-html's report data (title, outcomes, tests), once it hands it over
        self.relabelled = 0  # check rows shown as Failed that pytest-html counted as Errors

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report: Any) -> None:
        report.title = "opscheck report"
        self.data = report

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
            self.relabelled += 1
        cells.insert(1, severity_cell(record))
        cells.insert(2, check_id_cell(record))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str]) -> None:
        sweep = self.ctx.summary
        if self.coverage_only:
            prefix.append(coverage_html(self.ctx.coverage))
            return
        if sweep is None:
            return
        seconds = (datetime.now() - self.ctx.started).total_seconds()
        env = self.ctx.settings.env_name or "default"
        targets = [("environment", f"{env} ({self.ctx.settings.source})"), *targets_swept(self.ctx)]
        prefix.append(summary_html(sweep, targets, seconds, self.ctx.fail_on))
        if self.data is not None:
            self._finish(sweep)

    def _finish(self, sweep: Summary) -> None:
        """The rows' details from the summary (with root causes), the counts and the order made the checks'."""
        outcomes = getattr(self.data, "outcomes", None)
        if self.relabelled and isinstance(outcomes, dict) and "error" in outcomes and "failed" in outcomes:
            outcomes["error"]["value"] -= self.relabelled
            outcomes["failed"]["value"] += self.relabelled
            self.relabelled = 0
        data = getattr(self.data, "data", None)
        if not isinstance(data, dict) or not isinstance(data.get("tests"), dict):
            return
        tests = data["tests"]
        by_node = {r.nodeid: r for r in [*sweep.failed, *sweep.passed_records, *sweep.skipped]}
        for nodeid, entries in tests.items():
            record = by_node.get(nodeid)
            if record is None:
                continue
            for entry in entries:
                for extra in entry.get("extras", []):
                    if str(extra.get("content", "")).startswith(_EXTRA_START):
                        extra["content"] = extras_html(record, self.ctx.response_targets)
        order = row_order(sweep, list(tests))
        rows = {n: tests[n] for n in order}
        tests.clear()
        tests.update(rows)
        if data.get("initialSort") == "result":  # pytest-html's default: keep ours, not its outcome order
            data["initialSort"] = "original"

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = record_of(report)
        if record is None or not (record.outcome == "failed" or record.evidence):
            return
        from pytest_html import extras

        # Filled again from the summary when the session ends, with its root cause.
        html = extras.html(extras_html(record, self.ctx.response_targets))
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
    config.pluginmanager.register(HtmlReport(ctx, bool(config.getoption("opscheck_coverage"))), "opscheck-html")
