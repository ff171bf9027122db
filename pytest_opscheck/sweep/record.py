"""Records: each check's draft filled as it runs, sealed once into one redacted record, and the sweep's end.

The life of a record, in the order of this module:
1. `pytest_runtest_setup`: a `Draft` for this run of the check goes into `item.stash` (a declaration mistake
   fails the check here, on its own, with the mistake as its cause).
2. `pytest_runtest_makereport`: the draft gets the outcome, the failure's cause, evidence and facts (a
   `CheckFailed`, a `TargetUnreachable` from any fixture or probe, a typed skip), and for a failure the
   stack's evidence (`failure_evidence`); then it waits for the report to be logged.
3. `pytest_runtest_logreport`: the wait's outcome joins it (`--opscheck-wait` logs only its last run) and
   `seal` makes the one frozen `CheckRecord`, carried on the report as a plain dict (what xdist carries).
4. `pytest_sessionfinish`: the stack's last snapshot, the final records (secrets learned since, root causes)
   and the summary in one place (`finish`), the summary handed to every reporter through the
   `pytest_opscheck_summary` hook, then the gate's exit status once every report is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from typing import Any

import pytest

from ..causes import sweep_summary
from ..context import DRAFT, META, OBSERVED, SweepContext
from ..model import KEY, CheckRecord, Draft, SkipKind, Skipped, Waited, record_of
from ..probes.result import TargetUnreachable
from ..report.clean import EVIDENCE_LIMIT, MESSAGE_LIMIT, clean
from ..verdict import CheckFailed, CheckSkipped, Observed, observing
from .failure_evidence import failure_evidence
from .gate import decide
from .learned import learn

KEY_LIMIT = 200
ID_LIMIT = 300


def seal(draft: Draft, resolution: str, redact: Callable[[str], str]) -> CheckRecord:
    """The one way a record is made: the draft's text redacted and bounded, its facts kept typed."""
    meta = draft.meta
    return CheckRecord(
        check_id=clean(redact(meta.check_id), ID_LIMIT),
        nodeid=clean(redact(draft.nodeid), ID_LIMIT * 4),
        severity=meta.severity.name,
        outcome=draft.outcome,
        duration=round(draft.duration, 4),
        # Bounded first (a gigabyte body costs the redactor nothing), then redacted: a secret cut at the bound is
        # still masked by its head.
        message=redact(clean(draft.message, MESSAGE_LIMIT)),
        resolution=redact(clean(resolution, MESSAGE_LIMIT * 4)),
        evidence={redact(clean(k, KEY_LIMIT)): redact(clean(v, EVIDENCE_LIMIT)) for k, v in draft.evidence.items()},
        attempts=draft.waited.attempts,
        ready_after=draft.waited.ready_after,
        gave_up=clean(redact(draft.waited.gave_up), MESSAGE_LIMIT) if draft.waited.gave_up else None,
        topics=meta.topics,
        depends=meta.depends,
        service=meta.service,
        scope=meta.scope,
        target=draft.target,
        skipped=draft.skipped,
        facts=tuple(dataclasses.replace(f, detail=redact(clean(f.detail, MESSAGE_LIMIT))) for f in draft.facts),
        deploys=tuple(draft.deploys),
        started=draft.started,
    )


def resealed(record: CheckRecord, redact: Callable[[str], str]) -> CheckRecord:
    """`record` redacted again with every secret the sweep has learned by its end (a login's token learned
    after an early check reported)."""
    return dataclasses.replace(
        record,
        check_id=redact(record.check_id),
        nodeid=redact(record.nodeid),
        message=redact(record.message),
        resolution=redact(record.resolution),
        gave_up=redact(record.gave_up) if record.gave_up else None,
        evidence={redact(k): redact(v) for k, v in record.evidence.items()},
        facts=tuple(dataclasses.replace(f, detail=redact(f.detail)) for f in record.facts),
    )


class Recorder:
    """Fills each check's draft, seals it, keeps the records, snapshots the stack, ends the sweep."""

    def __init__(self, ctx: SweepContext, collect_only: bool = False, coverage_only: bool = False) -> None:
        self.ctx = ctx
        self.collect_only = collect_only
        self.coverage_only = coverage_only
        # Drafts whose report is made but not logged yet, by (nodeid, phase).
        self.pending: dict[tuple[str, str], Draft] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self) -> None:
        self._snapshot(fresh=False)

    def _snapshot(self, fresh: bool) -> None:
        """The stack's services as they are now (crash-looping, stopped), for attribution; none without a stack."""
        stack = self.ctx.targets.opened("stack")
        if stack is not None:
            with contextlib.suppress(TargetUnreachable):
                self.ctx.snapshots.append(stack.snapshot(fresh=fresh))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        # Before any fixture of the check is set up: its evidence starts here.
        meta = item.stash.get(META, None)
        if meta is not None:
            for phase in ("setup", "call"):  # an earlier run's (a retry under --opscheck-wait), never logged
                self.pending.pop((item.nodeid, phase), None)
            item.stash[DRAFT] = Draft(meta, item.nodeid, started=datetime.now(UTC).isoformat(timespec="milliseconds"))
            item.stash[OBSERVED] = observing()
            disabled = self.ctx.disabled(meta.check_id)
            if disabled:
                raise CheckSkipped(Skipped(SkipKind.DISABLED, disabled))
            if meta.mistake:
                raise CheckFailed(meta.mistake)
        return (yield)

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
        draft = item.stash.get(DRAFT, None)
        if draft is None or not (report.when == "call" or (report.when == "setup" and not report.passed)):
            return report
        if isinstance(failure, CheckFailed | TargetUnreachable):
            report.longrepr = self.ctx.redact(_cause(failure))
        self.fill(draft, report, call, item.stash.get(OBSERVED, None))
        self.pending[(report.nodeid, report.when)] = draft
        return report

    def fill(
        self, draft: Draft, report: pytest.TestReport, call: pytest.CallInfo[None], observed: Observed | None
    ) -> None:
        """What the check's run established: its outcome, cause, evidence and facts; a failure's stack evidence."""
        failure = call.excinfo.value if call.excinfo is not None else None
        draft.outcome = "failed" if report.failed else report.outcome
        draft.duration = report.duration
        if report.passed and observed is not None:  # a passed check keeps the evidence its probes gathered
            draft.add_evidence(observed.evidence)
            draft.facts.extend(observed.facts)
        elif report.skipped:
            if isinstance(failure, CheckSkipped):
                draft.skipped = failure.skipped
            else:
                text = report.longrepr[2].removeprefix("Skipped: ") if isinstance(report.longrepr, tuple) else ""
                draft.skipped = Skipped(SkipKind.OTHER, text)
            draft.message = draft.skipped.reason
        elif isinstance(failure, CheckFailed | TargetUnreachable):
            draft.message = _cause(failure)
            draft.add_evidence(failure.evidence)
            draft.facts.extend(failure.facts)
            if isinstance(failure, TargetUnreachable):  # its target is down: that target's own check explains it
                draft.target = failure.target
        else:
            draft.message = _first_line(call.excinfo.exconly() if call.excinfo else str(report.longrepr))
        if draft.outcome == "failed":
            evidence, deploys = failure_evidence(self.ctx, draft.meta)
            draft.add_evidence(evidence)
            draft.deploys.extend(deploys)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Generator[None, None, None]:
        # Before any reporter sees the report (the terminal, junitxml, xdist's worker sending it): sealed here.
        draft = self.pending.pop((report.nodeid, report.when), None)
        if draft is not None and getattr(report, KEY, None) is None:
            draft.waited = self.ctx.waited.pop(report.nodeid, Waited())
            setattr(report, KEY, seal(draft, draft.meta.resolution, self.ctx.redact).to_dict())
        record = record_of(report)  # on an xdist controller, the record a worker sealed
        if record is not None:  # kept by the report's own node id (the record's may be redacted: a secret param)
            self.ctx.records[report.nodeid] = record
            if record.outcome == "failed":
                self.ctx.first_failures.setdefault(record.nodeid, datetime.now())
        return (yield)

    def pytest_report_teststatus(self, report: pytest.TestReport) -> tuple[str, str, str] | None:
        """A check shows by its id under -v; one whose fixture could not reach its target failed (not an error)."""
        data = getattr(report, KEY, None)
        if not data:
            return None
        from ..report.terminal import check_status

        return check_status(report, str(data["check_id"]), str(data["severity"]))

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> Generator[None, Any, Any]:
        # The innermost wrapper: its first half runs before every reporter's own `pytest_sessionfinish`
        # (pytest-html, junitxml write their files there), its second half after them and before pytest's
        # terminal summary, which shows the exit status decided here.
        if not self.collect_only and not self.coverage_only:
            self.finish(session.config)
        try:
            result = yield
        except OSError as exc:
            # pytest-html or junitxml could not write its file: say so beside the verdict, which still prints.
            from ..report.paths import failed_write

            failed_write(session.config, exc)
            result = None
        decide(self.ctx, session, exitstatus, self.coverage_only, self.collect_only)
        return result

    def finish(self, config: pytest.Config) -> None:
        """The sweep's end, in order: the stack's last snapshot, the final records (redacted with every secret
        learned, root causes attributed), what changed since the last green sweep, every reporter."""
        ctx = self.ctx
        if ctx.records:
            self._snapshot(fresh=True)
        learn(ctx)
        records = [resealed(r, ctx.redact) for r in ctx.records.values()]
        summary = sweep_summary(
            records, ctx.targets.reach(), ctx.snapshots, ctx.response_targets, ctx.escalation, tuple(ctx.coverage)
        )
        summary = dataclasses.replace(summary, swept=tuple(ctx.targets.configured()))
        if ctx.history is not None:
            summary = ctx.history.update(summary, ctx.targets)
        ctx.summary = summary
        config.hook.pytest_opscheck_summary(summary=summary, config=config)


def _cause(failure: CheckFailed | TargetUnreachable) -> str:
    """A failure's one-line cause; an unreachable target names itself."""
    if isinstance(failure, TargetUnreachable):
        return f"{failure.target}: {failure.cause}"
    return failure.cause


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
