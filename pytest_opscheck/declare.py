"""A check's declaration read off its markers and docstring (`evaluate`); a mistake in it is a `MarkerError`."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .model import CheckMeta, Scope, Severity


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
    scope = Scope.STACK if markers("stack_wide") is not None else Scope.SERVICE
    return CheckMeta(
        check_id(path, name),
        severity,
        resolution,
        runbook,
        _call_marker("topics", _names_marker, topics_mark) if topics_mark is not None else (),
        _call_marker("depends_on", _names_marker, depends_mark) if depends_mark is not None else (),
        _call_marker("service", _service_marker, service_mark) if service_mark is not None else None,
        _call_marker("automates", _names_marker, automates_mark) if automates_mark is not None else (),
        scope,
    )


def worst(levels: Iterable[Severity]) -> Severity | None:
    """The most severe of `levels`, None when empty."""
    return min(levels, default=None)
