"""The one sweep context: built once in `pytest_configure`, kept under one stash key, read by every part.

A leaf module: at run time it imports only the severities (a leaf too), so any part may import it
without a circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import pytest

from .model import CheckMeta, Severity

if TYPE_CHECKING:
    from .causes import Reach
    from .config import Settings
    from .model import CheckRecord, Summary
    from .probes.resource.stack import StackSnapshot
    from .redact import Redactor
    from .runbook.links import Runbooks
    from .targets import Targets


@dataclass(frozen=True)
class Waited:
    """What ``--opscheck-wait`` did for one check: how many runs, when it passed, why it gave up."""

    attempts: int
    ready_after: float | None
    gave_up: str | None = None


@dataclass
class SweepContext:
    """Everything one sweep shares: what it was told, what it opened, and what it found."""

    settings: Settings
    redact: Redactor
    runbooks: Runbooks
    targets: Targets
    response_targets: dict[Severity, str]
    escalation: tuple[str, ...]
    fail_on: Severity
    reach: Reach
    started: datetime = field(default_factory=datetime.now)
    # Filled while the sweep runs, in this order: collection, records, the stack's snapshots.
    coverage: list[str] = field(default_factory=list)
    records: dict[str, CheckRecord] = field(default_factory=dict)
    first_failures: dict[str, datetime] = field(default_factory=dict)
    waited: dict[str, Waited] = field(default_factory=dict)
    snapshots: list[StackSnapshot] = field(default_factory=list)
    # The records with their root causes, computed once when the session finishes; every reporter reads it.
    summary: Summary | None = None


CONTEXT = pytest.StashKey[SweepContext]()
# Per check (item.stash): what the check declares, and the evidence its passing probes gathered.
META = pytest.StashKey[CheckMeta]()
OBSERVED = pytest.StashKey[dict[str, str]]()
