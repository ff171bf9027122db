"""A total deadline around a blocking probe: a peer that drips one byte a second cannot stretch a sweep."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from ..result import TargetUnreachable

T = TypeVar("T")


def within(
    seconds: float, target: str, what: str, call: Callable[[], T], abandon: Callable[[], None] | None = None
) -> T:
    """`call()`'s result, or TargetUnreachable("timed out after N s") once `seconds` have passed.

    The call runs in a daemon thread; on timeout `abandon()` (e.g. closing the client) is called so
    the thread ends soon, and the sweep goes on without it either way.
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread as is
            outcome["error"] = exc

    worker = threading.Thread(target=run, name=f"opscheck-{target}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        if abandon is not None:
            threading.Thread(target=abandon, daemon=True).start()
        raise TargetUnreachable(target, f"timed out after {seconds:g} s {what}")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
