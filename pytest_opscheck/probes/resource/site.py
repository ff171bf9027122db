"""The web targets, backend and frontend: one client each, and the first answer every check of it shares."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ...config import Settings
from ..result import TargetUnreachable
from ..transport.tls import client_context
from ..transport.web import Answer, Credential, WebClient, origin_of

# What a browser sends when it navigates to a page (typed URL, link, reload): frontends that serve the app
# shell only to navigation requests (FastAPI's app.frontend, Express fallbacks that check Accept) answer
# deep links by these.
NAVIGATION = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "none",
    "Sec-Fetch-User": "?1",
    "Upgrade-Insecure-Requests": "1",
}
# What a browser sends for the subresources a page references (never text/html: a fallback hides nothing).
SUBRESOURCE = {
    "script": {"Accept": "*/*", "Sec-Fetch-Dest": "script", "Sec-Fetch-Mode": "no-cors",
               "Sec-Fetch-Site": "same-origin"},
    "stylesheet": {"Accept": "text/css,*/*;q=0.1", "Sec-Fetch-Dest": "style", "Sec-Fetch-Mode": "no-cors",
                   "Sec-Fetch-Site": "same-origin"},
}


class Site(WebClient):
    """One web target (backend or frontend): an httpx client with the probe timeout, and its first answer.

    `get`/`request` follow redirects only while they stay on the configured hosts; an off-host redirect
    is returned as it is. A network failure raises `TargetUnreachable(name, cause)`.
    """

    def __init__(self, name: str, base_url: str, settings: Settings) -> None:
        allowed = {origin_of(u) for u in (settings.backend_url, settings.frontend_url, base_url) if u}
        super().__init__(name, base_url, settings.timeout, allowed, client_context(settings))
        self.first: Answer | None = None
        self._memo: dict[tuple[str, bool], Answer | str] = {}
        self._browser: Callable[[str], dict[str, str]] | None = None

    def as_browser(self, headers: dict[str, str] | Callable[[str], dict[str, str]] = NAVIGATION) -> Site:
        """This target (the same client) asked as a browser asks: every request carries `headers` (or the
        headers for its URL); `fork` keeps them."""
        twin = copy.copy(self)
        twin._memo = {}
        twin._browser = headers if callable(headers) else (lambda _url: headers)
        return twin

    def request(
        self, method: str, path: str, *, follow: bool = True, credential: Credential | None = None, **kwargs: Any
    ) -> Answer:
        if self._browser is not None:  # the browser's headers, under any the caller gives
            kwargs["headers"] = {**self._browser(self.url(path)), **(kwargs.get("headers") or {})}
        return super().request(method, path, follow=follow, credential=credential, **kwargs)

    def sample(self, path: str, credential: Credential | None = None) -> Answer | str:
        """GET `path` once per sweep (API checks share it), as the logged-in user when `credential` is given: the
        answer, or why there was none."""
        key = (path, credential is not None)
        if key not in self._memo:
            try:
                self._memo[key] = self.get(path, headers={"Connection": "close"}, credential=credential)
            except TargetUnreachable as exc:
                self._memo[key] = exc.cause
        return self._memo[key]

    def fork(self) -> Site:
        """This target through a client of its own (its own connections; the same hosts, TLS and headers): for
        one of several exchanges at once, so that a timeout, which closes a client, cuts no other exchange."""
        twin = copy.copy(self)
        twin.client = twin._new_client()
        twin._memo = {}
        return twin


def open_site(name: str, base_url: str, path: str, settings: Settings, headers: dict[str, str] | None = None) -> Site:
    """A `Site` whose first answer (GET `path`, with `headers`) is in; TargetUnreachable when none comes."""
    site = Site(name, base_url, settings)
    try:
        # No kept-alive socket is left behind by the opener: a sweep may end before it returns.
        site.first = site.get(path, headers={**(headers or {}), "Connection": "close"})
    except TargetUnreachable:
        site.close()
        raise
    return site


def open_backend(settings: Settings) -> Site:
    """GET the health path once (no health endpoint, `health_path = ""`: the root): the shared reachability
    result of every backend check."""
    assert settings.backend_url is not None
    return open_site("backend", settings.backend_url, settings.health_path or "/", settings)


def open_frontend(settings: Settings) -> Site:
    """GET the frontend's root once, as a browser navigates to it: the shared reachability result of every
    frontend check."""
    assert settings.frontend_url is not None
    return open_site("frontend", settings.frontend_url, "/", settings, NAVIGATION)
