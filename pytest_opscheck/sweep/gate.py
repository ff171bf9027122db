"""The gate: the sweep's exit status by severity threshold, and never green when nothing was checked."""

from __future__ import annotations

import pytest

from ..context import SweepContext


def decide(ctx: SweepContext, session: pytest.Session, exitstatus: int, coverage_only: bool,
           collect_only: bool) -> None:
    """Set the exit status once every record is in and every report is written (SPEC.md: 0, 1, 5 no verdict)."""
    if coverage_only:
        if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            session.exitstatus = pytest.ExitCode.OK
        return
    summary = ctx.summary
    if summary is None or collect_only:  # --collect-only runs nothing: no verdict expected
        return
    if exitstatus == pytest.ExitCode.TESTS_FAILED and _only_below_threshold(ctx, session):
        session.exitstatus = pytest.ExitCode.OK
    if session.exitstatus == pytest.ExitCode.OK and summary.no_verdict:
        # Every check skipped (a config whose ${VAR}s are unset) or none selected: a gate must not pass.
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED


def _only_below_threshold(ctx: SweepContext, session: pytest.Session) -> bool:
    """True when every failure is a check below ``--opscheck-fail-on``."""
    failed = [r for r in ctx.records.values() if r.outcome == "failed"]
    if session.testsfailed != len(failed):
        return False  # some failure is not a check's own (an error in a fixture or a teardown)
    return all(r.level > ctx.fail_on for r in failed)
