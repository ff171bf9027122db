"""``--opscheck-prometheus PATH``: the sweep in the Prometheus text format, for node_exporter's textfile collector.

A sweep run every few minutes from cron or a systemd timer writes `opscheck.prom` into the collector's folder;
the file is replaced atomically (a temporary file in the same folder, then a rename), so a scrape never reads
half of it. A skipped check has no `opscheck_check_up` sample (absent is not down: no alert on a gap), and is
counted in `opscheck_checks{outcome="skipped"}`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..context import SweepContext
from ..model import CheckRecord, Severity, Summary

if TYPE_CHECKING:
    from .files import Sink

OUTCOMES = ("failed", "passed", "skipped")


def _label(value: str) -> str:
    """A label value escaped as the text format wants it."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


def _family(name: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        inner = ",".join(f'{key}="{_label(text)}"' for key, text in labels.items())
        lines.append(f"{name}{{{inner}}} {_number(value)}" if inner else f"{name} {_number(value)}")
    return lines


def render_metrics(summary: Summary, finished: float, duration: float) -> str:
    """The metrics of one sweep: each check up or down and its duration, the counts, when the sweep ran."""
    ran: list[CheckRecord] = sorted([*summary.failed, *summary.passed_records], key=lambda r: (r.level, r.check_id))
    labels = [({"id": r.check_id, "severity": r.severity}, r) for r in ran]
    counts = [
        ({"severity": level.name, "outcome": outcome}, float(summary.counts[level.name][outcome]))
        for level in Severity
        for outcome in OUTCOMES
    ]
    lines = [
        *_family(
            "opscheck_check_up",
            "1 when the check passed in the last sweep, 0 when it failed (a skipped check has no sample)",
            ((label, 1.0 if r.outcome == "passed" else 0.0) for label, r in labels),
        ),
        *_family(
            "opscheck_check_duration_seconds",
            "How long the check took in the last sweep",
            ((label, r.duration) for label, r in labels),
        ),
        *_family("opscheck_checks", "Checks of the last sweep by severity and outcome", counts),
        *_family(
            "opscheck_last_sweep_timestamp_seconds",
            "When the last sweep finished, in seconds since the epoch",
            [({}, round(finished, 3))],
        ),
        *_family("opscheck_last_sweep_duration_seconds", "How long the last sweep took", [({}, round(duration, 3))]),
    ]
    return "\n".join(lines) + "\n"


class PrometheusReport:
    """Writes the metrics file from the sweep's final summary (on the controller under xdist)."""

    def __init__(self, ctx: SweepContext, sink: Sink, path: str) -> None:
        self.ctx = ctx
        self.sink = sink
        self.path = Path(path)

    def pytest_opscheck_summary(self, summary: Summary, config: pytest.Config) -> None:
        duration = (datetime.now() - self.ctx.started).total_seconds()
        text = render_metrics(self.sink.summary(summary), time.time(), max(duration, 0.0))
        self.sink.write("--opscheck-prometheus", self.path, text)
