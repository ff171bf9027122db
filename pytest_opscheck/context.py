"""The one sweep context: built once in `pytest_configure`, kept under one stash key, read by every part.

A leaf module: at run time it imports only the model (the bottom layer) and the check API, so any part
may import it without a circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatch
from typing import TYPE_CHECKING, Any

import pytest

from .model import CheckMeta, Draft, Severity, Waited
from .verdict import Observed

if TYPE_CHECKING:
    from .config import Settings
    from .model import CheckRecord, Summary
    from .probes.resource.stack import StackSnapshot
    from .redact import Redactor
    from .runbook.links import Runbooks
    from .targets import Targets


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
    # Check id patterns switched off (`disable = [...]`), and what keeps the stack's fingerprint between sweeps.
    disable: tuple[str, ...] = ()
    history: Any = None
    started: datetime = field(default_factory=datetime.now)
    # Filled while the sweep runs, in this order: collection, records, the stack's snapshots.
    coverage: list[str] = field(default_factory=list)
    records: dict[str, CheckRecord] = field(default_factory=dict)
    first_failures: dict[str, datetime] = field(default_factory=dict)
    waited: dict[str, Waited] = field(default_factory=dict)
    snapshots: list[StackSnapshot] = field(default_factory=list)
    # The records with their root causes, computed once when the session finishes; every reporter reads it.
    summary: Summary | None = None

    def disabled(self, check_id: str) -> str | None:
        """The `disable` pattern that switches `check_id` off, None when none does."""
        base = check_id.partition("[")[0]
        return next((p for p in self.disable if fnmatch(check_id, p) or fnmatch(base, p)), None)


CONTEXT = pytest.StashKey[SweepContext]()
# Per check (item.stash): what the check declares, the draft of its record for the run under way, and the
# evidence its passing probes gathered.
META = pytest.StashKey[CheckMeta]()
DRAFT = pytest.StashKey[Draft]()
OBSERVED = pytest.StashKey[Observed]()
