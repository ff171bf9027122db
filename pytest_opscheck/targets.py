"""The sweep's targets: what each one is, how to open it, and its handles (or failures) shared by every check.

`TARGETS` declares each target once: the config keys it needs, its opener (a plain function of the settings
in a resource module, imported only when a sweep opens it), the client libraries to import first, the
check that states its own failure, the targets it is reached through, the role of its Compose service and
the fixture that hands it to checks. `Targets.prefetch` opens every configured target at once in threads,
so a sweep of a dead stack waits about one timeout in all, not one per check.
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
WEB_LIBRARIES = ("httpx", "httpcore")  # httpx loads httpcore with its first client: import it before the clock


@dataclass(frozen=True)
class TargetSpec:
    """One target of a sweep, declared once."""

    name: str
    requires: tuple[str, ...]  # config keys that must be set; "a|b": either
    opener: str  # "module:function", the function returns a handle or raises TargetUnreachable
    root: str  # the check that states this target's own failure
    imports: tuple[str, ...] = ()
    via: tuple[str, ...] = ()  # targets this one is reached through (the login goes through the backend)
    service: str | None = None  # role of its Compose service: backend, db, frontend
    fixture: str | None = None  # the fixture that hands it to a check (using it declares the dependency)

    def load(self) -> Opener:
        module, _, function = self.opener.partition(":")
        func: Opener = getattr(importlib.import_module(module), function)
        return func


_RESOURCES = "pytest_opscheck.probes.resource"
TARGETS: dict[str, TargetSpec] = {
    spec.name: spec
    for spec in (
        TargetSpec("stack", ("compose_project|compose_file|swarm_stack",), f"{_RESOURCES}.stacks:open_any",
                   "stack.services_running", ("docker",), fixture="stack"),
        TargetSpec("db", ("database_url",), f"{_RESOURCES}.database:open_db", "db.reachable", ("psycopg",),
                   service="db", fixture="db"),
        TargetSpec("backend", ("backend_url",), f"{_RESOURCES}.site:open_backend", "backend.health",
                   WEB_LIBRARIES, service="backend"),
        TargetSpec("frontend", ("frontend_url",), f"{_RESOURCES}.site:open_frontend", "frontend.root",
                   WEB_LIBRARIES, service="frontend"),
        TargetSpec("auth", ("backend_url", "auth.login_path", "auth.username", "auth.password"),
                   f"{_RESOURCES}.auth:open_auth", "auth.login", WEB_LIBRARIES, via=("backend",),
                   service="backend", fixture="auth"),
        TargetSpec("ws", ("websocket_url",), f"{_RESOURCES}.websocket:open_ws", "ws.handshake",
                   ("websockets.sync.client",), service="backend", fixture="ws"),
        TargetSpec("smtp", ("smtp.host",), f"{_RESOURCES}.smtp:open_smtp", "email.smtp_session", fixture="smtp"),
    )
}
# The engine behind the stack fails as the stack does.
ALIASES = {"docker": "stack"}
# Opened ahead of the others: the stack's stats sample is a sweep's slowest probe.
LEADING = ("stack",)


def roots() -> dict[str, str]:
    """Each target's (and alias's) root check."""
    found = {name: spec.root for name, spec in TARGETS.items()}
    found.update({alias: TARGETS[name].root for alias, name in ALIASES.items()})
    return found


def depends_of(declared: Iterable[str]) -> tuple[str, ...]:
    """The checks a check depends on for its answers, closest first: each declared check, and for each declared
    target its root check and those of the targets it is reached through. (A target that cannot be reached at
    all names itself in the failure: no declaration is needed for that.)"""
    out: list[str] = []
    for name in declared:
        spec = TARGETS.get(ALIASES.get(name, name))
        checks = [name] if spec is None else [spec.root, *(TARGETS[v].root for v in spec.via)]
        out.extend(c for c in checks if c not in out)
    return tuple(out)


def service_role(declared: str | None, depends: Iterable[str], fixtures: Iterable[str]) -> str | None:
    """The role of a check's Compose service: declared, else that of its first target that has one."""
    if declared:
        return declared
    by_fixture = {spec.fixture: name for name, spec in TARGETS.items() if spec.fixture}
    for name in [*depends, *(by_fixture[f] for f in fixtures if f in by_fixture)]:
        spec = TARGETS.get(name)
        if spec is not None and spec.service:
            return spec.service
    return None


class Targets:
    """The opened targets of one sweep."""

    def __init__(self, settings: Settings, specs: dict[str, TargetSpec] | None = None) -> None:
        self.settings = settings
        self.specs = TARGETS if specs is None else specs
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

    def opened(self, name: str) -> Any | None:
        """The handle of target `name` if it is configured and opened without error, else None (never waits
        on a target nobody asked for)."""
        if self.missing(name) is not None:
            return None
        future = self._future(name)
        return None if future.exception() is not None else future.result()

    def ready(self) -> list[Any]:
        """The handles opened so far without error (never waits on one still opening)."""
        with self._lock:
            futures = list(self._futures.values())
        return [f.result() for f in futures if f.done() and not f.cancelled() and f.exception() is None]

    def reset(self) -> None:
        """Forget every opened target so the next `get` opens it afresh (a retry after a deploy)."""
        with self._lock:
            stale, self._futures = self._futures, {}
        _close_all(stale.values())

    def _future(self, name: str) -> Future[Any]:
        with self._lock:
            if name not in self._futures:
                spec = self.specs[name]
                self._futures[name] = self._pool.submit(lambda: spec.load()(self.settings))
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
