"""The web targets, backend and frontend: one client each, and the first answer every check of it shares."""

from __future__ import annotations

import copy

from ...config import Settings
from ..result import TargetUnreachable
from ..transport.tls import client_context
from ..transport.web import Answer, WebClient, origin_of


class Site(WebClient):
    """One web target (backend or frontend): an httpx client with the probe timeout, and its first answer.

    `get`/`request` follow redirects only while they stay on the configured hosts; an off-host redirect
    is returned as it is. A network failure raises `TargetUnreachable(name, cause)`.
    """

    def __init__(self, name: str, base_url: str, settings: Settings) -> None:
        allowed = {origin_of(u) for u in (settings.backend_url, settings.frontend_url, base_url) if u}
        super().__init__(name, base_url, settings.timeout, allowed, client_context(settings))
        self.first: Answer | None = None
        self._memo: dict[str, Answer | str] = {}

    def sample(self, path: str) -> Answer | str:
        """GET `path` once per sweep (API checks share it): the answer, or why there was none."""
        if path not in self._memo:
            try:
                self._memo[path] = self.get(path, headers={"Connection": "close"})
            except TargetUnreachable as exc:
                self._memo[path] = exc.cause
        return self._memo[path]

    def fork(self) -> Site:
        """This target through a client of its own (its own connections; the same hosts, TLS and headers): for
        one of several exchanges at once, so that a timeout, which closes a client, cuts no other exchange."""
        twin = copy.copy(self)
        twin.client = twin._new_client()
        twin._memo = {}
        return twin


def open_site(name: str, base_url: str, path: str, settings: Settings) -> Site:
    """A `Site` whose first answer (GET `path`) is already in; TargetUnreachable when none comes."""
    site = Site(name, base_url, settings)
    try:
        # No kept-alive socket is left behind by the opener: a sweep may end before it returns.
        site.first = site.get(path, headers={"Connection": "close"})
    except TargetUnreachable:
        site.close()
        raise
    return site


def open_backend(settings: Settings) -> Site:
    """GET the health path once: the shared reachability result of every backend check."""
    assert settings.backend_url is not None
    return open_site("backend", settings.backend_url, settings.health_path, settings)


def open_frontend(settings: Settings) -> Site:
    """GET the frontend's root once: the shared reachability result of every frontend check."""
    assert settings.frontend_url is not None
    return open_site("frontend", settings.frontend_url, "/", settings)
