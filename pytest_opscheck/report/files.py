"""The report files a sweep writes when it ends: the JSON records (SPEC.md), the post-mortem draft, the
Prometheus metrics and the JUnit XML. Each is a reporter of the sweep's final summary, called through
``pytest_opscheck_summary(summary, config)`` as a team's own reporter is.

Every file leaves through one `Sink`: the summary's text (which came from targets) bounded and redacted once
more, then written atomically; a write that fails is a line beside the terminal's verdict
(`paths.write_report`), never a traceback instead of it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Protocol

import pytest

from ..context import SweepContext
from ..model import Change, CheckRecord, Summary
from .clean import EVIDENCE_LIMIT, MESSAGE_LIMIT, clean
from .paste import paste_ready
from .paths import write_report

_KEY_LIMIT = 200


class Sink:
    """The one way out of the sweep for report text: every string bounded and redacted once more (a secret
    learnt late in the sweep, text a team's reporter added), and every file written atomically."""

    def __init__(self, config: pytest.Config, redact: Callable[[str], str]) -> None:
        self.config = config
        self.redact = redact
        self._last: tuple[Summary, Summary] | None = None  # the summary every reporter gets, cleaned once

    def text(self, value: str, limit: int = EVIDENCE_LIMIT) -> str:
        return clean(self.redact(value), limit)

    def optional(self, value: str | None, limit: int = MESSAGE_LIMIT) -> str | None:
        return None if value is None else self.text(value, limit)

    def record(self, record: CheckRecord) -> CheckRecord:
        """`record` with every text that may have come from a target bounded and redacted."""
        # A failure's steps as the terminal shows them: paste-ready, with its own services and filled-in commands.
        steps = paste_ready(record) if record.outcome == "failed" else record.resolution
        return dataclasses.replace(
            record,
            message=self.text(record.message, MESSAGE_LIMIT),
            resolution=self.text(steps),
            evidence={self.text(k, _KEY_LIMIT): self.text(v) for k, v in record.evidence.items()},
            gave_up=self.optional(record.gave_up),
        )

    def change(self, change: Change) -> Change:
        return Change(
            self.text(change.what, MESSAGE_LIMIT), self.optional(change.before), self.optional(change.after),
            self.optional(change.at),
        )

    def summary(self, summary: Summary) -> Summary:
        """The summary as every file shows it: its records and lines through `record`/`text` (done once for the
        summary the reporters share: redaction is the costly part of writing the files)."""
        if self._last is not None and self._last[0] is summary:
            return self._last[1]
        cleaned = self._clean(summary)
        self._last = (summary, cleaned)
        return cleaned

    def _clean(self, summary: Summary) -> Summary:
        def each(records: Iterable[CheckRecord]) -> list[CheckRecord]:
            return [self.record(r) for r in records]

        return dataclasses.replace(
            summary,
            failed=each(summary.failed),
            passed_records=each(summary.passed_records),
            skipped=each(summary.skipped),
            verdict=self.text(summary.verdict, MESSAGE_LIMIT),
            targets={level: self.text(text, MESSAGE_LIMIT) for level, text in summary.targets.items()},
            escalation=tuple(self.text(line, MESSAGE_LIMIT) for line in summary.escalation),
            coverage=tuple(self.text(line, MESSAGE_LIMIT) for line in summary.coverage),
            changes=tuple(self.change(c) for c in summary.changes),
        )

    def write(self, flag: str, path: str | Path, text: str) -> bool:
        """Write one file whole (temporary file, then rename); a failure is kept for the terminal."""
        return write_report(self.config, flag, path, text)


SINK = pytest.StashKey["Sink"]()


def sink_of(config: pytest.Config, ctx: SweepContext) -> Sink:
    """The sweep's one sink (in `config.stash`), shared by the files and the HTML report."""
    if SINK not in config.stash:
        config.stash[SINK] = Sink(config, ctx.redact)
    return config.stash[SINK]


class Reporter(Protocol):
    """A file reporter: an implementation of the `pytest_opscheck_summary` hook, as a team's own is."""

    def pytest_opscheck_summary(self, summary: Summary, config: pytest.Config) -> None: ...


def ordered(summary: Summary) -> list[CheckRecord]:
    """Every record, worst severity first, then by id."""
    return sorted(summary.records, key=lambda r: (r.level, r.check_id))


def json_payload(summary: Summary) -> dict[str, object]:
    """The JSON file (SPEC.md): the verdict line, what changed since the last green sweep (newest first), and
    one record per check, worst first."""
    return {
        "verdict": summary.verdict,
        "last_green": summary.last_green,
        "changes": [dataclasses.asdict(c) for c in summary.changes],
        "checks": [r.public() for r in ordered(summary)],
    }


class JsonReport:
    """``--opscheck-json PATH``: `{"verdict", "last_green", "changes", "checks": [record, ...]}`."""

    def __init__(self, sink: Sink, path: str) -> None:
        self.sink = sink
        self.path = Path(path)

    def pytest_opscheck_summary(self, summary: Summary, config: pytest.Config) -> None:
        text = json.dumps(json_payload(self.sink.summary(summary)), indent=2, ensure_ascii=False) + "\n"
        self.sink.write("--opscheck-json", self.path, text)


class PostmortemReport:
    """``--opscheck-postmortem PATH``: a Markdown draft filled from the failures and what changed before them."""

    def __init__(self, ctx: SweepContext, sink: Sink, path: str) -> None:
        self.ctx = ctx
        self.sink = sink
        self.path = Path(path)

    def pytest_opscheck_summary(self, summary: Summary, config: pytest.Config) -> None:
        from .postmortem import render_postmortem

        summary = self.sink.summary(summary)
        text = render_postmortem(
            summary.records, self.ctx.started, datetime.now(), self.ctx.first_failures,
            self.ctx.runbooks.configured, self.sink.redact, changes=summary.changes, last_green=summary.last_green,
        )
        self.sink.write("--opscheck-postmortem", self.path, text)


def take_over_junitxml(config: pytest.Config) -> str | None:
    """Under ``--opscheck`` the ``--junitxml`` file is the product's own (`junit.JunitReport`), written from the
    final summary, since pytest's junitxml cannot write a failure below ``--opscheck-fail-on`` as skipped nor
    name testcases by check id. The option is taken before junitxml's `pytest_configure` reads it (this runs
    in the plugin's, which comes first), so junitxml writes nothing; the path is returned."""
    path: str | None = config.getoption("xmlpath", None)
    if path:
        config.option.xmlpath = None
    return path


def register(config: pytest.Config, ctx: SweepContext) -> None:
    """Register the file reporters that are asked for (none on an xdist worker: the controller writes)."""
    if hasattr(config, "workerinput"):
        return
    sink = sink_of(config, ctx)
    reporters: list[tuple[str, Reporter]] = []
    json_path = config.getoption("opscheck_json")
    if json_path:
        reporters.append(("opscheck-json", JsonReport(sink, json_path)))
    postmortem = config.getoption("opscheck_postmortem")
    if postmortem:
        reporters.append(("opscheck-postmortem", PostmortemReport(ctx, sink, postmortem)))
    prometheus = config.getoption("opscheck_prometheus")
    if prometheus:
        from .prometheus import PrometheusReport

        reporters.append(("opscheck-prometheus", PrometheusReport(ctx, sink, prometheus)))
    sweeping = not config.option.collectonly and not config.getoption("opscheck_coverage")
    junit = take_over_junitxml(config) if sweeping else None  # a listing keeps junitxml's (empty) file
    if junit:
        from .junit import JunitReport

        reporters.append(("opscheck-junit", JunitReport(ctx, sink, junit)))
    for name, reporter in reporters:  # each called once with the final summary (`hooks.pytest_opscheck_summary`)
        config.pluginmanager.register(reporter, name)
