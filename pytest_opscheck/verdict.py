"""How a check states its verdict: fail with a one-line cause and evidence, no traceback."""

from __future__ import annotations

from contextvars import ContextVar
from typing import NoReturn

import pytest

from .probes.result import Evidence, Finding

# The evidence of the running check's probes that passed (a warning among it is still worth showing).
_observed: ContextVar[Evidence | None] = ContextVar("opscheck_observed", default=None)


class CheckFailed(pytest.fail.Exception):  # type: ignore[name-defined,misc]
    """A check's failure: a one-line cause plus evidence; shown without a traceback."""

    def __init__(self, cause: str, evidence: Evidence | None = None) -> None:
        super().__init__(cause, pytrace=False)
        self.cause = cause
        self.evidence = dict(evidence or {})


def fail(cause: str, evidence: Evidence | None = None) -> NoReturn:
    """Fail the running check with `cause` and `evidence`."""
    __tracebackhide__ = True
    raise CheckFailed(cause, evidence)


def expect(finding: Finding) -> Finding:
    """Fail the running check unless `finding` is ok; return it otherwise."""
    __tracebackhide__ = True
    if not finding.ok:
        raise CheckFailed(finding.cause, finding.evidence)
    observed = _observed.get()
    if observed is not None:
        observed.update(finding.evidence)
    return finding


def observing() -> Evidence:
    """Start keeping the running check's evidence: the returned dict fills as its probes pass."""
    observed: Evidence = {}
    _observed.set(observed)
    return observed


def skip_unless_configured(reason: str | None) -> None:
    """Skip the running check with `reason` ("not configured: <key>") when there is one."""
    __tracebackhide__ = True
    if reason:
        pytest.skip(reason)
