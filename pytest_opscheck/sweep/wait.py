"""``--opscheck-wait``: after a deploy, retry failing checks with backoff until they pass or time is up.

A check whose Compose service is crash-looping or stopped is not retried: waiting will not heal a crash
loop, and the rollout gate should say so at once. What the wait did for each check goes to the sweep
context (`Waited`), where the record picks it up.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import pytest

from ..causes import cannot_heal, service_cause
from ..context import DRAFT, META, SweepContext
from ..model import Waited
from ..probes.result import TargetUnreachable
from .record import seal

FIRST_DELAY = 0.25
MAX_DELAY = 2.0
Protocol = Callable[..., list[pytest.TestReport]]


class Wait:
    """Runs each check until it passes, the wait is over, or its service is crash-looping or stopped."""

    def __init__(self, ctx: SweepContext, seconds: float, run_once: Protocol) -> None:
        self.ctx = ctx
        self.seconds = seconds
        self.run_once = run_once  # pytest's own run of one item (setup, call, teardown), reports not logged
        self.started = time.monotonic()

    def pytest_runtestloop(self) -> None:
        self.started = time.monotonic()

    def give_up(self, item: pytest.Item) -> str | None:
        """Why waiting cannot help `item`: its service (any service, for a stack check) crash-loops or stopped,
        or the root of its failure is a fault that does not heal by itself (a container that keeps exiting on a
        missing value, an OOM kill: `causes.cannot_heal`, read from the run's typed facts)."""
        meta = item.stash.get(META, None)
        if meta is None:
            return None
        snapshots = []
        stack = self.ctx.targets.opened("stack")
        if stack is not None:
            try:
                snapshot = stack.snapshot(fresh=True)
            except TargetUnreachable:  # no engine: nothing tells a crash
                snapshot = None
            if snapshot is not None:
                snapshots.append(snapshot)
                services = [meta.service] if meta.service else sorted(snapshot.services) if meta.stack_wide else []
                for service in services:
                    if service_cause(service, [snapshot]):
                        return f"service {service} {snapshot.services[service].detail}"
        draft = item.stash.get(DRAFT, None)
        if draft is None or draft.outcome != "failed":
            return None
        # This run's record as it would be sealed, read against the records the sweep has so far.
        record = seal(draft, meta.resolution, self.ctx.redact)
        return cannot_heal(record, self.ctx.records.values(), self.ctx.targets.reach(), snapshots)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool:
        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        deadline = self.started + self.seconds
        delay, attempts, reason = FIRST_DELAY, 0, None
        while True:
            attempts += 1
            reports = self.run_once(item, nextitem=nextitem, log=False)
            failed = any(r.failed for r in reports)
            if not failed or time.monotonic() + delay > deadline:
                break
            reason = self.give_up(item)
            if reason:
                break
            time.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
            with contextlib.suppress(Exception):
                self.ctx.targets.reset()
        ready_after = round(time.monotonic() - self.started, 2) if not failed else None
        self.ctx.waited[item.nodeid] = Waited(attempts, ready_after, reason)
        for report in reports:
            item.ihook.pytest_runtest_logreport(report=report)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True
