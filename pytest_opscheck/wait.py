"""``--opscheck-wait``: after a deploy, retry failing checks with backoff until they pass or time is up.

A check whose service has a container that exited or is restarting is not retried: waiting will not
heal a crash loop, and the rollout gate should say so at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

# Retrying one item is not in pytest's public API; this is the function rerun plugins build on too.
from _pytest.runner import runtestprotocol

from .targets import Targets

FIRST_DELAY = 0.25
MAX_DELAY = 2.0


class Wait:
    """Runs each check until it passes, the wait is over, or `give_up(item)` names a crash."""

    def __init__(self, seconds: float, targets: Targets, give_up: Callable[[pytest.Item], str | None]) -> None:
        self.seconds = seconds
        self.targets = targets
        self.give_up = give_up
        self.started = time.monotonic()

    def pytest_runtestloop(self) -> None:
        self.started = time.monotonic()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool:
        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        deadline = self.started + self.seconds
        delay = FIRST_DELAY
        attempts = 0
        reason = None
        while True:
            attempts += 1
            reports = runtestprotocol(item, nextitem=nextitem, log=False)
            failed = any(r.failed for r in reports)
            if not failed or time.monotonic() + delay > deadline:
                break
            reason = self.give_up(item)
            if reason:
                break
            time.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
            self.targets.reset()
        ready_after = round(time.monotonic() - self.started, 2) if not failed else None
        for report in reports:
            record = getattr(report, "opscheck", None)
            if record is not None:
                record.update(attempts=attempts, ready_after=ready_after)
                if reason:
                    record["message"] = f"{record['message']} (not waited for: {reason})"
            item.ihook.pytest_runtest_logreport(report=report)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True
