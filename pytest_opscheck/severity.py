"""Severities, their response-time targets, and a check's metadata read from its markers."""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class Severity(enum.IntEnum):
    """P1 is the worst; a lower value sorts first."""

    P1 = 1
    P2 = 2
    P3 = 3
    P4 = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        """`"P1"`..`"P4"` (any case) to a Severity; ValueError otherwise."""
        try:
            return cls[text.strip().upper()]
        except (KeyError, AttributeError):
            raise ValueError(f"expected one of P1, P2, P3, P4, got {text!r}") from None


LABELS = {Severity.P1: "CRITICAL", Severity.P2: "HIGH", Severity.P3: "MEDIUM", Severity.P4: "LOW"}
# The runbooks' response-time targets; a runbook's own severity table overrides them.
RESPONSE_TARGETS = {
    Severity.P1: "respond immediately (within 15 min)",
    Severity.P2: "respond within 1 hour",
    Severity.P3: "respond within 4 hours",
    Severity.P4: "respond next business day",
}


@dataclass(frozen=True)
class CheckMeta:
    """What the markers and the docstring say about one check."""

    check_id: str
    severity: Severity
    resolution: str
    runbook: str | None = None
    # The runbook topics it automates (closest first), what it depends on (target names such as "db", or
    # check ids such as "db.migrations_current"; closest first), and the role of its Compose service.
    topics: tuple[str, ...] = ()
    depends: tuple[str, ...] = ()
    service: str | None = None
    # The runbook lines it automates, as glob patterns (`catalogue_lines`): "docker compose ps", "free -m".
    automates: tuple[str, ...] = ()


class MarkerError(Exception):
    """A check's markers are missing or malformed; the message says which and how to fix it."""


def _severity_marker(level: str) -> Severity:
    return Severity.parse(level)


def _resolution_marker(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("expected the resolution steps as a non-empty string")
    return text


def _runbook_marker(ref: str) -> str:
    if not isinstance(ref, str) or "#" not in ref:
        raise ValueError('expected "path/to/runbook.md#section-anchor"')
    return ref


def _names_marker(*names: str) -> tuple[str, ...]:
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ValueError("expected one or more names")
    return tuple(n.strip() for n in names)


def _service_marker(role: str) -> str:
    if not isinstance(role, str) or not role.strip():
        raise ValueError('expected a service role ("backend", "db", "frontend") or a Compose service name')
    return role.strip()


def _call_marker(name: str, func: Callable[..., Any], mark: Any) -> Any:
    try:
        inspect.signature(func).bind(*mark.args, **mark.kwargs)
        return func(*mark.args, **mark.kwargs)
    except (TypeError, ValueError) as exc:
        raise MarkerError(f"@pytest.mark.{name}{_args(mark)}: {exc}") from None


def _args(mark: Any) -> str:
    parts = [repr(a) for a in mark.args] + [f"{k}={v!r}" for k, v in mark.kwargs.items()]
    return f"({', '.join(parts)})"


def check_id(path: Path, name: str) -> str:
    """`checks/test_db.py::test_reachable[x]` is `db.reachable[x]`: file and function, less `test_`."""
    module = path.stem.removeprefix("test_").removesuffix("_test")
    return f"{module}.{name.removeprefix('test_')}"


def evaluate(path: Path, name: str, markers: Callable[[str], Any], doc: str | None) -> CheckMeta:
    """Read severity and resolution from a check's markers (closest first) and docstring."""
    severity_mark = markers("severity")
    if severity_mark is None:
        raise MarkerError('no severity: add @pytest.mark.severity("P1".."P4") to the check')
    severity = _call_marker("severity", _severity_marker, severity_mark)
    resolution_mark = markers("resolution")
    if resolution_mark is not None:
        resolution = _call_marker("resolution", _resolution_marker, resolution_mark)
    else:
        resolution = inspect.cleandoc(doc) if doc else ""
    runbook_mark = markers("runbook")
    runbook = _call_marker("runbook", _runbook_marker, runbook_mark) if runbook_mark is not None else None
    topics_mark, depends_mark, service_mark = markers("topics"), markers("depends_on"), markers("service")
    automates_mark = markers("automates")
    return CheckMeta(
        check_id(path, name),
        severity,
        resolution,
        runbook,
        _call_marker("topics", _names_marker, topics_mark) if topics_mark is not None else (),
        _call_marker("depends_on", _names_marker, depends_mark) if depends_mark is not None else (),
        _call_marker("service", _service_marker, service_mark) if service_mark is not None else None,
        _call_marker("automates", _names_marker, automates_mark) if automates_mark is not None else (),
    )


def worst(levels: Iterable[Severity]) -> Severity | None:
    """The most severe of `levels`, None when empty."""
    return min(levels, default=None)
