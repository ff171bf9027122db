"""The sweep's targets: what each one is, how to open it, and its handles (or failures) shared by every check.

A target is declared once, through the hook `pytest_opscheck_targets(targets)` (`hooks.py`): the built-in ones
by `BuiltinTargets` below, a team's (Redis, a queue, an object store) by its plugin or the `conftest.py` of its
checks folder, with the same `Targets.add`. Each declares the config keys it needs, its opener, the check that
states its own failure, the targets it is reached through, the role of its Compose service and the fixture that
hands it to checks. `Targets.prefetch` opens every configured target at once in threads, so a sweep of a dead
stack waits about one timeout in all, not one per check; a target added later (a conftest loaded during
collection) starts opening as soon as it is added.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from .causes import Reach
from .config import Settings
from .config.keys import skipped_for, value_of
from .model import SkipKind, Skipped
from .probes.result import TargetUnreachable
from .verdict import fail, skip_unless_configured

Opener = Callable[..., Any]
WEB_LIBRARIES = ("httpx", "httpcore")  # httpx loads httpcore with its first client: import it before the clock
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


class TargetError(Exception):
    """A target declared wrongly (a name taken, a bad key); the message says which and what to do."""


@dataclass(frozen=True)
class TargetSpec:
    """One target of a sweep, declared once."""

    name: str
    opener: str | Opener  # "module:function" (imported when first opened) or the function itself
    root: str  # the check that states this target's own failure
    # Config keys that must be set ("a|b": either). With `setting`, the opener is called as
    # opener(value_of_setting, timeout); without, as opener(settings).
    requires: tuple[str, ...] = ()
    setting: str | None = None
    imports: tuple[str, ...] = ()
    via: tuple[str, ...] = ()  # targets this one is reached through (the login goes through the backend)
    service: str | None = None  # role of its Compose service: backend, db, frontend
    fixture: str | None = None  # the fixture that hands it to a check (using it declares the dependency)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.setting,) if self.setting else self.requires

    def open(self, settings: Settings) -> Any:
        func: Opener
        if isinstance(self.opener, str):
            module, _, function = self.opener.partition(":")
            func = getattr(importlib.import_module(module), function)
        else:
            func = self.opener
        if self.setting is None:
            return func(settings)
        try:
            return func(value_of(settings, self.setting), settings.timeout)
        except TargetUnreachable:
            raise
        except Exception as exc:  # noqa: BLE001 - a team opener let its client's error through: the target's cause
            raise TargetUnreachable(self.name, f"{type(exc).__name__}: {exc}".splitlines()[0][:300]) from None


_RESOURCES = "pytest_opscheck.probes.resource"
BUILTIN: tuple[TargetSpec, ...] = (
    TargetSpec("stack", f"{_RESOURCES}.stacks:open_any", "stack.services_running",
               ("compose_project|compose_file|swarm_stack",), imports=("docker",), fixture="stack"),
    TargetSpec("db", f"{_RESOURCES}.database:open_db", "db.reachable", ("database_url",), imports=("psycopg",),
               service="db", fixture="db"),
    TargetSpec("backend", f"{_RESOURCES}.site:open_backend", "backend.health", ("backend_url",),
               imports=WEB_LIBRARIES, service="backend"),
    TargetSpec("frontend", f"{_RESOURCES}.site:open_frontend", "frontend.root", ("frontend_url",),
               imports=WEB_LIBRARIES, service="frontend"),
    TargetSpec("auth", f"{_RESOURCES}.auth:open_auth", "auth.login",
               # a static API token (auth.style = "static") stands for the login's keys
               ("backend_url", "auth.login_path|auth.token", "auth.username|auth.token", "auth.password|auth.token"),
               imports=WEB_LIBRARIES,
               via=("backend",), service="backend", fixture="auth"),
    TargetSpec("ws", f"{_RESOURCES}.websocket:open_ws", "ws.handshake", ("websocket_url",),
               imports=("websockets.sync.client",), service="backend", fixture="ws"),
    TargetSpec("smtp", f"{_RESOURCES}.smtp:open_smtp", "email.smtp_session", ("smtp.host",), fixture="smtp"),
)
# The engine behind the stack fails as the stack does.
ALIASES = {"docker": "stack"}
# Opened ahead of the others: the stack's stats sample is a sweep's slowest probe.
LEADING = ("stack",)


class BuiltinTargets:
    """The product's own targets, declared through the same hook a team's plugin uses."""

    def pytest_opscheck_targets(self, targets: Targets) -> None:
        for spec in BUILTIN:
            targets.declare(spec)


class Targets:
    """The targets of one sweep: declared through the hook, opened once and concurrently, shared by every check.

    What a team's hook implementation calls: `targets.add(name, opener=..., setting=..., root_check=...)`;
    what a check calls (fixture `opscheck_targets`): `targets.get(name)`.
    """

    def __init__(self, settings: Settings, specs: Iterable[TargetSpec] = ()) -> None:
        self.settings = settings
        self.specs: dict[str, TargetSpec] = {}
        self.declared_by: dict[str, str] = {}
        self._futures: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="opscheck")
        self._prefetching = False
        for spec in specs:
            self.declare(spec)

    # -- declaring ---------------------------------------------------------------------------------------
    def add(
        self,
        name: str,
        opener: str | Opener,
        setting: str | None = None,
        root_check: str | None = None,
        *,
        requires: tuple[str, ...] = (),
        via: tuple[str, ...] = (),
        service: str | None = None,
        imports: tuple[str, ...] = (),
    ) -> None:
        """Declare a target: `opener(value, timeout)` returns a handle or raises `TargetUnreachable`, `setting`
        is its config key (`extra.cache_url`), `root_check` the check that states its own failure
        (default `<name>.reachable`)."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise TargetError(f"targets.add({name!r}): a target's name is lower-case letters, digits and _")
        if setting is None and not requires:
            raise TargetError(f"targets.add({name!r}): give setting=\"extra.{name}_url\", the key it needs")
        if setting is not None and not isinstance(setting, str):
            raise TargetError(f"targets.add({name!r}): setting is a dotted config key such as extra.{name}_url")
        if not (callable(opener) or isinstance(opener, str)):
            raise TargetError(f"targets.add({name!r}): opener is a function (value, timeout) -> handle")
        self.declare(TargetSpec(name, opener, root_check or f"{name}.reachable", tuple(requires), setting,
                                tuple(imports), tuple(via), service))

    def declare(self, spec: TargetSpec) -> None:
        """Declare `spec`; a name taken by another declaration is a `TargetError`."""
        with self._lock:
            known = self.specs.get(spec.name) or self.specs.get(ALIASES.get(spec.name, ""))
            if (known is not None and known != spec) or spec.name in ALIASES:
                raise TargetError(f"target {spec.name!r} is declared twice: pick another name for yours")
            self.specs[spec.name] = spec
            start = self._prefetching
        if start and self.skipped(spec.name) is None:
            self._future(spec.name)

    def reach(self) -> Reach:
        """How targets fail: each one's root check and the targets it is reached through."""
        roots = {name: spec.root for name, spec in self.specs.items()}
        roots.update({alias: self.specs[name].root for alias, name in ALIASES.items() if name in self.specs})
        return Reach(roots, {name: spec.via for name, spec in self.specs.items()})

    def depends_of(self, declared: Iterable[str]) -> tuple[str, ...]:
        """The checks a check depends on for its answers, closest first: each declared check, and for each
        declared target its root check and those of the targets it is reached through. (A target that cannot
        be reached at all names itself in the failure: no declaration is needed for that.)"""
        out: list[str] = []
        for name in declared:
            spec = self.specs.get(ALIASES.get(name, name))
            checks = [name] if spec is None else [spec.root, *(self.specs[v].root for v in spec.via)]
            out.extend(c for c in checks if c not in out)
        return tuple(out)

    def service_role(self, declared: str | None, depends: Iterable[str], fixtures: Iterable[str]) -> str | None:
        """The role of a check's Compose service: declared, else that of its first target that has one."""
        if declared:
            return declared
        by_fixture = {spec.fixture: name for name, spec in self.specs.items() if spec.fixture}
        for name in [*depends, *(by_fixture[f] for f in fixtures if f in by_fixture)]:
            spec = self.specs.get(name)
            if spec is not None and spec.service:
                return spec.service
        return None

    # -- opening -----------------------------------------------------------------------------------------
    def skipped(self, name: str) -> Skipped | None:
        """Why target `name` is not configured (typed), None when it is. A required key may name
        alternatives, ``"compose_project|compose_file"``: one of them is enough."""
        for key in self.specs[name].keys:
            reasons = [skipped_for(self.settings, k) for k in key.split("|")]
            if all(reasons):
                unset = [r for r in reasons if r is not None and r.kind is SkipKind.UNSET_VARIABLE]
                return unset[0] if unset else reasons[0]
        return None

    def missing(self, name: str) -> str | None:
        """The "not configured" reason of target `name` as text, None when it is configured."""
        skipped = self.skipped(name)
        return skipped.reason if skipped else None

    def configured(self) -> list[str]:
        """The names of the configured targets: the ones a sweep opens."""
        return [name for name in list(self.specs) if self.skipped(name) is None]

    def prefetch(self) -> None:
        """Start opening every configured target now, the leading ones first; one declared later starts
        opening as soon as it is declared.

        Each opener starts as soon as its client library is imported, here, one library after the other: an
        opener's timeout then counts network time only, and the stack's stats sample, a sweep's slowest probe,
        starts before the other libraries load.
        """
        with self._lock:
            self._prefetching = True
        for name in sorted(self.configured(), key=lambda n: n not in LEADING):
            for module in self.specs[name].imports:
                importlib.import_module(module)
            self._future(name)

    def get(self, name: str) -> Any:
        """The handle of target `name`. Skips the running check when the target is not configured; raises what
        opening it raised (`TargetUnreachable`, which fails the check with the target's cause)."""
        __tracebackhide__ = True
        if name not in self.specs:
            fail(f"no target {name!r} is declared (known: {', '.join(sorted(self.specs))}): "
                 "declare it with the pytest_opscheck_targets hook, or fix the name")
        skip_unless_configured(self.skipped(name))
        future = self._future(name)
        if self.specs[name].setting is None:
            return future.result()  # the built-in openers keep their own deadlines
        try:  # a team's opener is given the timeout; the sweep does not wait on one that ignores it
            return future.result(timeout=2 * self.settings.timeout + 1)
        except FutureTimeout:
            raise TargetUnreachable(name, f"no answer within {2 * self.settings.timeout + 1:g} s") from None

    def opened(self, name: str) -> Any | None:
        """The handle of target `name` if it is configured and opened without error, else None (never waits
        on a target nobody asked for)."""
        if name not in self.specs or self.skipped(name) is not None:
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
                self._futures[name] = self._pool.submit(spec.open, self.settings)
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
