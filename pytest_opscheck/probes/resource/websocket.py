"""The configured WebSocket: its protocol (plain, Socket.io, graphql-transport-ws, the legacy graphql-ws), whether it
takes the login's credential (`websocket_token`), and the outcome of one handshake made when the sweep opened it (a
refusal is not "down"; a path where no WebSocket answers while HTTP on the same origin does is named for what it
is; a GraphQL server that speaks the other GraphQL protocol is named as such)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ...config import Settings
from .. import facts
from ..result import TargetUnreachable
from ..transport.tls import client_context
from ..transport.web import Credential, bound_to
from ..transport.websocket import Handshake, WebSocketEndpoint, refusal, unreachable_cause
from ..transport.ws_protocols import (
    GRAPHQL_TRANSPORT_WS,
    GRAPHQL_WS,
    Greeting,
    greet,
    same_origin_http,
    socket_io_url,
    speaks_legacy,
)

NO_HANDLER = "no WebSocket answers at this path; HTTP on the same origin answers"


class _Peek:
    """A plain GET of the WebSocket's path, started half way through an upgrade still unanswered, with the
    other half as its deadline: whether HTTP on the same origin answers is known when the upgrade times out,
    and the opener still waits one timeout in all."""

    def __init__(self, url: str, timeout: float, context: Any) -> None:
        self.result: str | None = None
        self._timer = threading.Timer(timeout / 2, self._run, (url, timeout / 2, context))
        self._timer.daemon = True
        self._timer.name = "opscheck-ws-peek"
        self._ran = threading.Event()
        self._timer.start()

    def _run(self, url: str, seconds: float, context: Any) -> None:
        try:
            self.result = same_origin_http(url, seconds, context)
        finally:
            self._ran.set()

    def wait(self, seconds: float) -> str | None:
        """What the GET got (None: nothing answered), within `seconds` more at most."""
        self._ran.wait(seconds)
        return self.result

    def cancel(self) -> None:
        self._timer.cancel()


@dataclass(frozen=True)
class Opened(Handshake):
    """A handshake and, on top of it, the protocol's own greeting (what it said, engine.io's heartbeat)."""

    detail: str = ""
    greeting: Greeting | None = None
    since: float = 0.0  # monotonic time the protocol opened (engine.io's first ping is due pingInterval after)


@dataclass(frozen=True)
class WebSocketTarget(WebSocketEndpoint):
    """The configured WebSocket: `connect()` opens one (websockets' sync client), with the token when set;
    `session()` opens one and greets in its protocol; `first` is the handshake made when the sweep opened it."""

    protocol: str = "plain"
    token_mode: str = "none"  # websocket_token: none, header, query
    first: Opened | None = None
    # The login's credential before it holds anything: its origins (backend_url's, auth.origin's), TLS, and how a
    # token is presented (auth.scheme / auth.token_header), for `with_token`.
    blank: Credential | None = field(default=None, repr=False)
    scheme: str = "Bearer"
    token_header: str | None = None

    @property
    def needs_token(self) -> bool:
        return self.token_mode != "none"

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    def with_token(self, token: str | None) -> WebSocketTarget:
        """This WebSocket carrying the login's `token` as auth.scheme / auth.token_header present it, bound to the
        login's origins and this URL's (websocket_token says it takes it), never in clear text when the login
        was made over https."""
        if token is None:
            return dataclasses.replace(self, token=None, credential=None)
        blank = self.blank or bound_to(self.url)
        header = (self.token_header, token) if self.token_header else ("Authorization", f"{self.scheme} {token}")
        return self.with_credential(dataclasses.replace(blank, headers=(header,)), token)

    def with_credential(self, credential: Credential, token: str | None = None) -> WebSocketTarget:
        """This WebSocket carrying `credential` (a token's headers, or a session's cookies) as far as it may go."""
        return dataclasses.replace(self, credential=credential.also(self.url), token=token)

    @contextmanager
    def session(self) -> Iterator[tuple[Opened, Any | None]]:
        """Open a connection and greet in the protocol: how it went, and the connection when it did (closed on
        leaving). Raises TargetUnreachable when nothing answers at that address at all."""
        started = time.perf_counter()
        peek = _Peek(self.url, self.timeout, self.context)
        try:
            connection = self.connect()
        except Exception as exc:  # noqa: BLE001 - every failure is classified below
            yield self._not_opened(exc, started, peek), None
            return
        finally:
            peek.cancel()
        with connection:
            seconds = time.perf_counter() - started
            greeting = greet(connection, self.protocol, self.timeout, self.sent_token, self.auth_headers())
            cause = greeting.cause
            if cause and self.protocol in (GRAPHQL_TRANSPORT_WS, "plain"):
                cause += self._legacy_hint()
            opened = Opened(cause, seconds, 101, greeting.detail, greeting, time.monotonic())
            yield opened, (connection if cause is None else None)

    def handshake(self) -> Opened:
        """Open, greet and close one connection; raises TargetUnreachable when nothing answers at all."""
        with self.session() as (opened, _):
            return opened

    def _not_opened(self, exc: Exception, started: float, peek: _Peek) -> Opened:
        status, cause = refusal(exc, self)
        if status is None and cause is None:
            unreachable = unreachable_cause(exc, self)
            # HTTP on the origin answers in milliseconds when only the WebSocket route is missing. The look began
            # half way through the upgrade; an upgrade refused or closed early gets its own short look.
            elapsed = time.perf_counter() - started
            if elapsed >= self.timeout / 2:
                plain = peek.wait(max(0.0, self.timeout - elapsed))
            else:
                peek.cancel()
                plain = same_origin_http(self.url, self.timeout - elapsed, self.context)
            if plain is None:
                raise TargetUnreachable("ws", unreachable, facts=facts.down(self.url, unreachable, websocket=True)) \
                    from None
            cause = f"{NO_HANDLER}: {unreachable.replace('opening ', 'upgrading ')}, while {plain}"
        elif self.protocol in (GRAPHQL_TRANSPORT_WS, "plain") and status is not None and 400 <= status < 500:
            cause = f"{cause}{self._legacy_hint()}"
        return Opened(cause, time.perf_counter() - started, status)

    def _legacy_hint(self) -> str:
        """Whether the server speaks the older subscriptions-transport-ws ("graphql-ws"): it opens with that
        subprotocol and acknowledges its connection_init (a server that echoes whatever subprotocol it is offered
        is told apart by the ack)."""
        try:
            with dataclasses.replace(self, subprotocols=(GRAPHQL_WS,)).connect() as legacy:
                if legacy.subprotocol == GRAPHQL_WS and speaks_legacy(legacy, self.timeout / 2):
                    return ('; it speaks the legacy subscriptions-transport-ws protocol (subprotocol "graphql-ws"): '
                            'set websocket_protocol = "graphql-ws"')
        except Exception:  # noqa: BLE001 - only a hint: no answer, no hint
            return ""
        return ""

    def close(self) -> None:
        """Nothing stays open: every probe closes its own connection."""


def websocket_address(settings: Settings) -> str:
    """The URL the configured protocol opens: engine.io's path and query for Socket.io, the URL as it is else."""
    assert settings.websocket_url is not None
    if settings.websocket_protocol == "socket.io":
        return socket_io_url(settings.websocket_url)
    return settings.websocket_url


def open_ws(settings: Settings) -> WebSocketTarget:
    """One handshake (and the protocol's greeting) without a token: the shared reachability result."""
    url = websocket_address(settings)
    secure = urlsplit(url).scheme == "wss"
    protocol = settings.websocket_protocol
    auth = settings.auth
    blank = None
    if auth is not None and settings.backend_url:
        from .auth import credential_base

        blank = credential_base(settings)
    target = WebSocketTarget(
        url, settings.timeout, client_context(settings) if secure else None,
        token_in="query" if settings.websocket_token == "query" else "header",
        subprotocols=(protocol,) if protocol in (GRAPHQL_TRANSPORT_WS, GRAPHQL_WS) else (),
        protocol=protocol, token_mode=settings.websocket_token, blank=blank,
        scheme=auth.scheme if auth is not None else "Bearer", token_header=auth.token_header if auth else None,
    )
    return dataclasses.replace(target, first=target.handshake())
