"""The sweep's targets, opened once and concurrently, their handles (or failures) shared by every check.

A component declares how to open its target with `@opener("db", requires="database_url")`: a plain
function of the settings that returns a handle or raises `TargetUnreachable`. `Targets.prefetch`
opens every configured target at once in threads, so a sweep of a dead stack waits about one
timeout in all, not one per check.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .config import Settings

Opener = Callable[[Settings], Any]


@dataclass(frozen=True)
class TargetSpec:
    """How to open one target, and the config keys it needs."""

    name: str
    requires: tuple[str, ...]
    open: Opener
    imports: tuple[str, ...] = ()


REGISTRY: dict[str, TargetSpec] = {}
# The probe modules that declare openers; imported only when a sweep starts.
OPENER_MODULES = ("database", "compose", "http", "auth", "websocket", "smtp")
# The check that states a target's own failure; other checks failing on that target are its consequences.
ROOT_CHECKS = {
    "docker": "stack.services_running",
    "stack": "stack.services_running",
    "db": "db.reachable",
    "backend": "backend.health",
    "frontend": "frontend.root",
    "auth": "auth.login",
    "ws": "ws.handshake",
    "smtp": "email.smtp_session",
}

# Opened ahead of the others: the stack's stats sample is a sweep's slowest probe (one to two seconds).
LEADING = ("stack",)


def root_cause(check_id: str, target: str | None) -> str | None:
    """The check a failure on `target` is a consequence of; None when `check_id` is that check."""
    root = ROOT_CHECKS.get(target or "")
    return root if root and root != check_id.split("[")[0] else None


def opener(
    name: str, requires: str | tuple[str, ...], imports: tuple[str, ...] = ()
) -> Callable[[Opener], Opener]:
    """Declare `func(settings)` as the way to open target `name` (needs the `requires` keys, "a|b": either;
    `imports`: the client libraries it uses, imported before it starts)."""
    keys = (requires,) if isinstance(requires, str) else requires

    def register(func: Opener) -> Opener:
        REGISTRY[name] = TargetSpec(name, keys, func, imports)
        return func

    return register


def load_openers() -> dict[str, TargetSpec]:
    """Import every probe module that declares an opener; the registry they fill."""
    for module in OPENER_MODULES:
        importlib.import_module(f"{__package__}.probes.{module}")
    return REGISTRY


class Targets:
    """The opened targets of one sweep."""

    def __init__(self, settings: Settings, specs: dict[str, TargetSpec] | None = None) -> None:
        self.settings = settings
        self.specs = load_openers() if specs is None else specs
        self._futures: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(4, len(self.specs)), thread_name_prefix="opscheck")

    def missing(self, name: str) -> str | None:
        """The "not configured" reason of target `name`, None when it is configured.

        A required key may name alternatives, ``"compose_project|compose_file"``: one of them is enough.
        """
        if name not in self.specs:
            return f"not configured: {name} (no probe for it is installed)"
        for key in self.specs[name].requires:
            reasons = [self.settings.missing(k) for k in key.split("|")]
            if all(reasons):
                return reasons[0]
        return None

    def prefetch(self) -> None:
        """Start opening every configured target now, the leading ones first.

        Each opener starts as soon as its client library is imported, here, one library after the other: an
        opener's timeout then counts network time only, and the stack's stats sample, a sweep's slowest probe,
        starts before the other libraries load.
        """
        configured = [name for name in self.specs if self.missing(name) is None]
        for name in sorted(configured, key=lambda n: n not in LEADING):
            for module in self.specs[name].imports:
                importlib.import_module(module)
            self._future(name)

    def get(self, name: str) -> Any:
        """The handle of target `name`; raises what opening it raised (the same for every caller)."""
        return self._future(name).result()

    def reset(self) -> None:
        """Forget every opened target so the next `get` opens it afresh (a retry after a deploy)."""
        with self._lock:
            stale, self._futures = self._futures, {}
        _close_all(stale.values())

    def _future(self, name: str) -> Future[Any]:
        with self._lock:
            if name not in self._futures:
                self._futures[name] = self._pool.submit(self.specs[name].open, self.settings)
            return self._futures[name]

    def close(self) -> None:
        """Close every handle that has a `close()`, without waiting on probes still running."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        _close_all(self._futures.values())


def _close_all(futures: Iterable[Future[Any]]) -> None:
    """Close every opened handle; one still opening is closed as soon as it is open."""
    for future in futures:
        future.add_done_callback(_close_handle)


def _close_handle(future: Future[Any]) -> None:
    if future.cancelled() or future.exception() is not None:
        return
    close = getattr(future.result(), "close", None)
    if callable(close):
        with contextlib.suppress(Exception):  # a failing close changes no verdict
            close()
