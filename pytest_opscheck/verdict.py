"""How a check states its verdict: fail with a one-line cause, evidence and facts, no traceback; skip with a
typed reason."""

from __future__ import annotations

from contextvars import ContextVar
from typing import NoReturn

import pytest

from .model import Fact, SkipKind, Skipped
from .probes.result import Evidence, Finding


class Observed:
    """What the running check's probes established while passing: evidence worth showing and typed facts."""

    def __init__(self) -> None:
        self.evidence: Evidence = {}
        self.facts: list[Fact] = []


_observed: ContextVar[Observed | None] = ContextVar("opscheck_observed", default=None)


class CheckFailed(pytest.fail.Exception):  # type: ignore[name-defined,misc]
    """A check's failure: a one-line cause plus evidence and facts; shown without a traceback."""

    def __init__(self, cause: str, evidence: Evidence | None = None, facts: tuple[Fact, ...] = ()) -> None:
        super().__init__(cause, pytrace=False)
        self.cause = cause
        self.evidence = dict(evidence or {})
        self.facts = tuple(facts)


class CheckSkipped(pytest.skip.Exception):  # type: ignore[name-defined,misc]
    """A check not run, with its typed reason (not configured, a variable unset, disabled)."""

    # Shown by pytest as its own skips are (`-v`, `-rs`: "SKIPPED ... not configured: smtp.host").
    __module__ = "builtins"
    __qualname__ = "Skipped"

    def __init__(self, skipped: Skipped) -> None:
        super().__init__(skipped.reason, allow_module_level=False)
        self.skipped = skipped


def fail(cause: str, evidence: Evidence | None = None, facts: tuple[Fact, ...] = ()) -> NoReturn:
    """Fail the running check with `cause`, `evidence` and `facts`."""
    __tracebackhide__ = True
    raise CheckFailed(cause, evidence, facts)


def expect(finding: Finding) -> Finding:
    """Fail the running check unless `finding` is ok; return it otherwise (its evidence and facts are kept)."""
    __tracebackhide__ = True
    if not finding.ok:
        raise CheckFailed(finding.cause, finding.evidence, finding.facts)
    observed = _observed.get()
    if observed is not None:
        observed.evidence.update(finding.evidence)
        observed.facts.extend(finding.facts)
    return finding


def observing() -> Observed:
    """Start keeping the running check's evidence: the returned object fills as its probes pass."""
    observed = Observed()
    _observed.set(observed)
    return observed


def skip_unless_configured(skipped: Skipped | str | None) -> None:
    """Skip the running check when there is a reason: a typed one (`config.keys.skipped_for(settings, key)`),
    or a text of the check's own (kept as an "other" skip, never read back)."""
    __tracebackhide__ = True
    if isinstance(skipped, str):
        skipped = Skipped(SkipKind.OTHER, skipped) if skipped else None
    if skipped is not None:
        raise CheckSkipped(skipped)
