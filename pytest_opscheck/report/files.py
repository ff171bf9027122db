"""The report files: the JSON records (SPEC.md), the post-mortem draft, JUnit and Prometheus, written at the end.

Each reads the summary the Recorder computed once (``ctx.summary``) and writes atomically; a write that
fails is a line beside the terminal's verdict (`paths.write_report`), never a traceback instead of it.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from ..context import SweepContext
from ..model import CheckRecord, Summary
from .paths import write_report
from .postmortem import render_postmortem


def ordered(summary: Summary) -> list[CheckRecord]:
    """Every record, worst severity first, then by id."""
    return sorted([*summary.failed, *summary.passed_records, *summary.skipped], key=lambda r: (r.level, r.check_id))


def json_payload(summary: Summary) -> dict[str, object]:
    """The JSON file (SPEC.md): the verdict line and one record per check, worst first."""
    return {"verdict": summary.verdict, "checks": [r.public() for r in ordered(summary)]}


class JsonReport:
    """``--opscheck-json PATH``: `{"verdict": ..., "checks": [record, ...]}`, worst first."""

    def __init__(self, ctx: SweepContext, path: str) -> None:
        self.ctx = ctx
        self.path = Path(path)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        summary = self.ctx.summary
        if summary is None:
            return
        text = json.dumps(json_payload(summary), indent=2, ensure_ascii=False) + "\n"
        write_report(session.config, "--opscheck-json", self.path, text)


class PostmortemReport:
    """``--opscheck-postmortem PATH``: a Markdown draft filled from the failures."""

    def __init__(self, ctx: SweepContext, path: str) -> None:
        self.ctx = ctx
        self.path = Path(path)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        summary = self.ctx.summary
        if summary is None:
            return
        records = [*summary.failed, *summary.passed_records, *summary.skipped]
        text = render_postmortem(
            records, self.ctx.started, datetime.now(), self.ctx.first_failures,
            self.ctx.runbooks.configured, self.ctx.redact,
        )
        write_report(session.config, "--opscheck-postmortem", self.path, text)


def register(config: pytest.Config, ctx: SweepContext) -> None:
    """Register the file reporters that are asked for (none on an xdist worker: the controller writes)."""
    if hasattr(config, "workerinput"):
        return
    plugins = config.pluginmanager
    json_path = config.getoption("opscheck_json")
    if json_path:
        plugins.register(JsonReport(ctx, json_path), "opscheck-json")
    postmortem = config.getoption("opscheck_postmortem")
    if postmortem:
        plugins.register(PostmortemReport(ctx, postmortem), "opscheck-postmortem")
    prometheus = config.getoption("opscheck_prometheus")
    if prometheus:
        from .prometheus import PrometheusReport

        plugins.register(PrometheusReport(ctx, prometheus), "opscheck-prometheus")
    if config.getoption("xmlpath", None):
        from .junit import JunitReport

        plugins.register(JunitReport(ctx, config.getoption("xmlpath")), "opscheck-junit")
