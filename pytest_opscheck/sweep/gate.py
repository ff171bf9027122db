"""The gate: the sweep's exit status by severity threshold, and never green when nothing was checked."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from ..context import SweepContext
from ..report.paths import failed_write


class Gate:
    """Sets the exit status once every record is in and every report is written (SPEC.md: 0, 1, 5 no verdict)."""

    def __init__(self, ctx: SweepContext, coverage_only: bool, collect_only: bool) -> None:
        self.ctx = ctx
        self.coverage_only = coverage_only
        self.collect_only = collect_only  # --collect-only runs nothing: no verdict expected

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> Generator[None, Any, Any]:
        # Innermost: after every other part of the session's end, whatever happened in them.
        try:
            result = yield
        except OSError as exc:
            # pytest-html or junitxml could not write its file: say so beside the verdict, which still prints.
            failed_write(session.config, exc)
            result = None
        self.decide(session, exitstatus)
        return result

    def decide(self, session: pytest.Session, exitstatus: int) -> None:
        if self.coverage_only:
            if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
                session.exitstatus = pytest.ExitCode.OK
            return
        summary = self.ctx.summary
        if summary is None or self.collect_only:
            return
        if exitstatus == pytest.ExitCode.TESTS_FAILED and self._only_below_threshold(session):
            session.exitstatus = pytest.ExitCode.OK
        if session.exitstatus == pytest.ExitCode.OK and summary.no_verdict:
            # Every check skipped (a config whose ${VAR}s are unset) or none selected: a gate must not pass.
            session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED

    def _only_below_threshold(self, session: pytest.Session) -> bool:
        """True when every failure is a check below ``--opscheck-fail-on``."""
        failed = [r for r in self.ctx.records.values() if r.outcome == "failed"]
        if session.testsfailed != len(failed):
            return False  # some failure is not a check's own (an error in a fixture or a teardown)
        return all(r.level > self.ctx.fail_on for r in failed)
