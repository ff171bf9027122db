"""Evidence every failing check gets from the stack, whatever its own probes gathered: when each of its
containers was created and from which image (a failure minutes after a redeploy says so), and for the
checks of a topic the runbook greps the logs for (`grep -i "websocket\\|socket"`, `grep -i auth`, `grep -i
token`), the backend's matching log lines. Read only when a check fails and the stack is open already.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Any

import pytest

from ..catalogue_lines import LOG_GREPS
from ..context import META, SweepContext
from ..model import KEY, CheckMeta
from ..probes.diagnosis.deploys import deployed, log_lines
from ..probes.result import Evidence, TargetUnreachable
from ..report.clean import EVIDENCE_LIMIT, clean

# Checks about the stack as a whole: their failures carry every container's deploy.
STACK_PREFIXES = ("stack.", "host.")


class FailureEvidence:
    """Adds the stack's deploy and log evidence to each failing check's record, redacted as the rest."""

    def __init__(self, ctx: SweepContext) -> None:
        self.ctx = ctx

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        report = yield
        data = getattr(report, KEY, None)
        meta = item.stash.get(META, None)
        if not data or data.get("outcome") != "failed" or meta is None:
            return report
        extra = self.evidence(meta)
        redact = self.ctx.redact
        evidence = data.setdefault("evidence", {})
        for key, value in extra.items():
            evidence.setdefault(clean(redact(key), 200), clean(redact(value), EVIDENCE_LIMIT))
        return report

    def evidence(self, meta: CheckMeta) -> Evidence:
        """The deploy of the check's containers and, for its topics, its service's matching log lines."""
        stack = self.ctx.targets.opened("stack")
        if stack is None:
            return {}
        settings = self.ctx.settings
        service = meta.service
        extra: Evidence = {}
        with contextlib.suppress(TargetUnreachable):
            if meta.check_id.startswith(STACK_PREFIXES):
                extra |= deployed(stack)
            elif service:
                extra |= deployed(stack, [service])
            for topic in meta.topics if not stack.engine_lost() else ():  # no SDK call on a gone engine
                if topic in LOG_GREPS:
                    extra |= log_lines(stack, service or settings.backend_service, LOG_GREPS[topic][0])
        return extra
