"""What a failure is seen against: when each container was created and from which image ("Rollback if recent
deployment"), and the lines of a service's log that the runbook greps for by hand (`grep -i auth`)."""

from __future__ import annotations

import re
import time
from datetime import datetime

from ..resource.stack import LOG_SCAN_LINES, Container, Stack, _span
from ..result import Evidence
from .common import with_decisive

# A container created less than this before the sweep is a recent deploy: the failure may have come with it.
RECENT_SECONDS = 3600.0
LOG_LINES_SHOWN = 20
DEPLOYED = "deployed"


def _clock(epoch: float | None) -> str:
    return f"{datetime.fromtimestamp(epoch):%Y-%m-%d %H:%M:%S}" if epoch else "unknown"


def deploy_line(stack: Stack, container: Container, now: float) -> str:
    """`NAME: created WHEN (N min before the sweep) from TAG (image ID, built WHEN)`, flagged when recent."""
    created = container.created
    tag, image_id = container.image
    built = stack.image_created(image_id) if image_id != "?" else None
    age = f"{_span(now - created)} before the sweep" if created else "age unknown"
    line = (f"{container.name}: created {_clock(created)} ({age}) from {tag} "
            f"(image {image_id.removeprefix('sha256:')[:12]}, built {_clock(built)})")
    if created and now - created < RECENT_SECONDS:
        line += " — recent: if the failure began with this deploy, roll back to the previous image tag"
    return line


def deployed(stack: Stack, services: list[str] | None = None, now: float | None = None) -> Evidence:
    """When each container (of `services`, else all) was created and from which image, newest first."""
    now = time.time() if now is None else now
    containers = [c for c in stack.containers if services is None or c.service in services]
    if not containers:
        return {}
    containers.sort(key=lambda c: c.created or 0.0, reverse=True)
    return {DEPLOYED: "\n".join(deploy_line(stack, c, now) for c in containers)}


def log_lines(stack: Stack, service: str, pattern: str) -> Evidence:
    """The lines of `service`'s log (its earlier runs included) that match `pattern`, case-insensitively."""
    regex = re.compile(pattern, re.IGNORECASE)
    evidence = {}
    for container in stack.of_service(service):
        logged = container.logs(LOG_SCAN_LINES).splitlines()
        hits = [i for i, line in enumerate(logged) if regex.search(line)]
        key = f"{container.name}: log lines matching {pattern}"
        evidence[key] = "\n".join(logged[i] for i in with_decisive(logged, hits)[-LOG_LINES_SHOWN:]) if hits else \
            f"(none in its last {LOG_SCAN_LINES} lines)"
    return evidence
