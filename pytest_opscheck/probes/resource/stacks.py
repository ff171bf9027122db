"""The stack target's opener: the configured backend behind the one `Stack` interface.

`swarm_stack` opens the Swarm stack through a manager (`resource.swarm`); `compose_project` or `compose_file`
the Compose project (`resource.compose`). The config allows only one of the two kinds.
"""

from __future__ import annotations

from ...config import Settings
from .compose import open_stack
from .stack import Stack
from .swarm import open_swarm


def open_any(settings: Settings) -> Stack:
    """The configured stack, opened: a Swarm stack when `swarm_stack` is set, else the Compose project."""
    if settings.swarm_stack:
        return open_swarm(settings)
    return open_stack(settings)
