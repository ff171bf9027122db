"""Evidence every failing check gets from the stack, whatever its own probes gathered: when each of its
containers was created and from which image (a failure minutes after a redeploy says so; typed as `Deploy`),
and for the checks of a topic the runbook greps the logs for (`grep -i "websocket\\|socket"`, `grep -i auth`,
`grep -i token`), the backend's matching log lines. Read only when a check fails and the stack is open already.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from ..catalogue_lines import LOG_GREPS
from ..context import SweepContext
from ..model import CheckMeta, Deploy
from ..probes.diagnosis.deploys import deployed, log_lines
from ..probes.result import Evidence, TargetUnreachable


def failure_evidence(ctx: SweepContext, meta: CheckMeta) -> tuple[Evidence, list[Deploy]]:
    """The deploys of the check's containers (every container's, for a check about the whole stack) and, for
    its topics, its service's matching log lines."""
    stack = ctx.targets.opened("stack")
    if stack is None:
        return {}, []
    service = meta.service
    services = None if meta.stack_wide else [service] if service else []
    extra: Evidence = {}
    deploys: list[Deploy] = []
    with contextlib.suppress(TargetUnreachable):
        if services != []:
            extra |= deployed(stack, services)
            deploys = deploys_of(stack, services)
        for topic in meta.topics if not stack.engine_lost() else ():  # no SDK call on a gone engine
            if topic in LOG_GREPS:
                extra |= log_lines(stack, service or ctx.settings.backend_service, LOG_GREPS[topic][0])
    return extra, deploys


def deploys_of(stack: object, services: list[str] | None) -> list[Deploy]:
    """Each container (of `services`, else all) as a typed deploy, newest first."""
    containers = [c for c in getattr(stack, "containers", ()) if services is None or c.service in services]
    containers.sort(key=lambda c: c.created or 0.0, reverse=True)
    return [
        Deploy(
            service=c.service,
            container=c.name,
            image=c.image[0],
            created=datetime.fromtimestamp(c.created, UTC).isoformat(timespec="seconds") if c.created else "",
        )
        for c in containers
    ]
