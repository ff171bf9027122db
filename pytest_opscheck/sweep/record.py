"""Records: each check's outcome made into one redacted record, in one place, as the check reports.

A check fails by raising `CheckFailed` (through `verdict.expect`/`fail`) or, anywhere below it (a fixture,
a probe), `TargetUnreachable`: both become the same one-line failure here, at setup or at call. Setup
failures stay setup failures for pytest and show as failed checks through `pytest_report_teststatus`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Generator
from datetime import datetime
from typing import Any

import pytest

from ..causes import sweep_summary
from ..context import META, OBSERVED, SweepContext
from ..model import KEY, CheckMeta, CheckRecord, record_of
from ..probes.result import TargetUnreachable
from ..report.clean import EVIDENCE_LIMIT, MESSAGE_LIMIT, clean
from ..verdict import CheckFailed, observing
from .learned import learn, redact_records


class Recorder:
    """Builds each check's record, keeps them, snapshots the stack at the start and the end, sums up."""

    def __init__(self, ctx: SweepContext) -> None:
        self.ctx = ctx

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self) -> None:
        self._snapshot(fresh=False)

    def _snapshot(self, fresh: bool) -> None:
        """The stack's services as they are now (crash-looping, stopped), for attribution; none without a stack."""
        stack = self.ctx.targets.opened("stack")
        if stack is not None:
            with contextlib.suppress(TargetUnreachable):
                self.ctx.snapshots.append(stack.snapshot(fresh=fresh))

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if META in item.stash:
            item.stash[OBSERVED] = observing()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        failure = call.excinfo.value if call.excinfo is not None else None
        if isinstance(failure, CheckFailed):
            # Shown as its cause alone: pytest need not walk (and filter) the fixtures' frames of its traceback.
            assert call.excinfo is not None
            call.excinfo.traceback = call.excinfo.traceback[-1:]
        elif isinstance(failure, TargetUnreachable) and META in item.stash:
            # Shown as its cause alone too: no frame for pytest to read the source of (~20 ms a failure).
            assert call.excinfo is not None
            call.excinfo.traceback = call.excinfo.traceback[:0]
        report: pytest.TestReport = yield
        learn(self.ctx)  # the token of a login, the containers' secrets: secrets from the moment they are known
        _redact_report(report, self.ctx.redact)
        meta = item.stash.get(META, None)
        if meta is None or not (report.when == "call" or (report.when == "setup" and not report.passed)):
            return report
        if isinstance(failure, CheckFailed | TargetUnreachable):
            report.longrepr = self.ctx.redact(_cause(failure)[0])
        setattr(report, KEY, self.record(report, meta, call, item.stash.get(OBSERVED, {})).to_dict())
        return report

    def record(
        self, report: pytest.TestReport, meta: CheckMeta, call: pytest.CallInfo[None], observed: dict[str, str]
    ) -> CheckRecord:
        """The check's record; a passed check keeps the evidence its probes gathered."""
        redact = self.ctx.redact
        failure = call.excinfo.value if call.excinfo is not None else None
        evidence: dict[str, str] = dict(observed) if report.passed else {}
        target = None
        if report.skipped:
            message = report.longrepr[2].removeprefix("Skipped: ") if isinstance(report.longrepr, tuple) else ""
        elif report.failed and isinstance(failure, CheckFailed | TargetUnreachable):
            message, evidence, target = _cause(failure)
        elif report.failed:
            message = _first_line(call.excinfo.exconly() if call.excinfo else str(report.longrepr))
        else:
            message = ""
        return CheckRecord(
            check_id=meta.check_id,
            nodeid=report.nodeid,
            severity=meta.severity.name,
            outcome="failed" if report.failed else report.outcome,
            duration=round(report.duration, 4),
            message=clean(redact(message), MESSAGE_LIMIT),
            resolution=redact(meta.resolution),
            evidence={clean(redact(k), 200): clean(redact(v), EVIDENCE_LIMIT) for k, v in evidence.items()},
            topics=meta.topics,
            depends=meta.depends,
            service=meta.service,
            target=target,
        )

    def pytest_report_teststatus(self, report: pytest.TestReport) -> tuple[str, str, str] | None:
        """A check shows by its id under -v; one whose fixture could not reach its target failed (not an error)."""
        data = getattr(report, KEY, None)
        if not data:
            return None
        from ..report.terminal import check_status

        return check_status(report, str(data["check_id"]), str(data["severity"]))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = record_of(report)
        if record is None:
            return
        waited = self.ctx.waited.get(record.nodeid)
        if waited is not None:
            message = f"{record.message} (not waited for: {waited.gave_up})" if waited.gave_up else record.message
            record = dataclasses.replace(
                record, attempts=waited.attempts, ready_after=waited.ready_after, message=message
            )
        self.ctx.records[record.nodeid] = record
        if record.outcome == "failed":
            self.ctx.first_failures.setdefault(record.nodeid, datetime.now())

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        if self.ctx.records:
            self._snapshot(fresh=True)
        learn(self.ctx)
        redact_records(self.ctx)
        self.ctx.summary = sweep_summary(
            self.ctx.records.values(), self.ctx.reach, self.ctx.snapshots, self.ctx.response_targets,
            self.ctx.escalation, tuple(self.ctx.coverage),
        )


def _cause(failure: CheckFailed | TargetUnreachable) -> tuple[str, dict[str, str], str | None]:
    """A failure's one-line cause, its evidence and the target it could not reach (if that is why)."""
    if isinstance(failure, TargetUnreachable):  # its target is down: that target's own check explains it
        return f"{failure.target}: {failure.cause}", dict(failure.evidence), failure.target
    return failure.cause, dict(failure.evidence), None


def _redact_report(report: pytest.TestReport, redact: Any) -> None:
    """Redact the failure text and captured output; keep pytest's rich repr when nothing changed."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):
        report.longrepr = (longrepr[0], longrepr[1], redact(longrepr[2]))
    elif longrepr is not None:
        text = str(longrepr)
        redacted = redact(text)
        if redacted != text:
            report.longrepr = redacted
    report.sections = [(title, redact(body)) for title, body in report.sections]


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text)
