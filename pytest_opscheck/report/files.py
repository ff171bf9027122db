"""The report files: the JSON records (SPEC.md) and the post-mortem draft, written when the sweep ends."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from ..context import SweepContext
from .postmortem import render_postmortem


class JsonReport:
    """``--opscheck-json PATH``: `{"verdict": ..., "checks": [record, ...]}`, worst first."""

    def __init__(self, ctx: SweepContext, path: str) -> None:
        self.ctx = ctx
        self.path = Path(path)

    def pytest_sessionfinish(self) -> None:
        summary = self.ctx.summary
        if summary is None:
            return
        records = sorted([*summary.failed, *summary.passed_records, *summary.skipped],
                         key=lambda r: (r.level, r.check_id))
        payload = {"verdict": summary.verdict, "checks": [r.public() for r in records]}
        self.path.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")


class PostmortemReport:
    """``--opscheck-postmortem PATH``: a Markdown draft filled from the failures."""

    def __init__(self, ctx: SweepContext, path: str) -> None:
        self.ctx = ctx
        self.path = Path(path)

    def pytest_sessionfinish(self) -> None:
        summary = self.ctx.summary
        if summary is None:
            return
        records = [*summary.failed, *summary.passed_records, *summary.skipped]
        text = render_postmortem(
            records, self.ctx.started, datetime.now(), self.ctx.first_failures,
            self.ctx.runbooks.configured, self.ctx.redact,
        )
        self.path.write_text(text, encoding="utf-8")


def register(config: pytest.Config, ctx: SweepContext) -> None:
    """Register the file reporters that are asked for (none on an xdist worker)."""
    if hasattr(config, "workerinput"):
        return
    json_path = config.getoption("opscheck_json")
    if json_path:
        config.pluginmanager.register(JsonReport(ctx, json_path), "opscheck-json")
    postmortem = config.getoption("opscheck_postmortem")
    if postmortem:
        config.pluginmanager.register(PostmortemReport(ctx, postmortem), "opscheck-postmortem")
