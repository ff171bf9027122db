"""WebSocket probes: the handshake (a non-upgrade answer named for what it is) and a ping."""

from __future__ import annotations

import dataclasses
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..config import Settings
from ..targets import opener
from .result import Finding, TargetUnreachable
from .tls import client_context


@dataclass(frozen=True)
class Handshake:
    """How one opening handshake went: upgraded, or the one-line reason it was not."""

    cause: str | None
    seconds: float
    status: int | None = None

    @property
    def ok(self) -> bool:
        return self.cause is None


@dataclass(frozen=True)
class WebSocketTarget:
    """The configured WebSocket: `connect()` opens one (websockets' sync client), with the token when set."""

    url: str
    timeout: float
    context: ssl.SSLContext | None
    token: str | None = field(default=None, repr=False)
    first: Handshake | None = None

    @property
    def where(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'wss' else 80)}"

    def with_token(self, token: str | None) -> WebSocketTarget:
        return dataclasses.replace(self, token=token)

    def connect(self, **kwargs: Any) -> Any:
        """An open `websockets.sync.client.ClientConnection` (close it, or use it in a `with`)."""
        from websockets.sync.client import connect

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        options: dict[str, Any] = {
            "open_timeout": self.timeout,
            "close_timeout": min(self.timeout, 1.0),
            "ping_interval": None,
            "proxy": None,
            "additional_headers": headers,
            "ssl": self.context,
        }
        return connect(self.url, **{**options, **kwargs})

    def handshake(self) -> Handshake:
        """Open and close one connection; raises TargetUnreachable when nothing answers at all."""
        started = time.perf_counter()
        try:
            with self.connect():
                return Handshake(None, time.perf_counter() - started, 101)
        except Exception as exc:  # noqa: BLE001 - every failure is classified below
            status, cause = refusal(exc, self)
            if status is None and cause is None:
                raise TargetUnreachable("ws", unreachable_cause(exc, self)) from None
            return Handshake(cause, time.perf_counter() - started, status)

    def close(self) -> None:
        """Nothing stays open: every probe closes its own connection."""


def refusal(exc: Exception, target: WebSocketTarget) -> tuple[int | None, str | None]:
    """The HTTP status and one-line reason of a handshake the server answered without upgrading."""
    from websockets.exceptions import InvalidHandshake, InvalidMessage, InvalidStatus, InvalidUpgrade

    path = urlsplit(target.url).path or "/"
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        reason = exc.response.reason_phrase
        if status == 404:
            return status, f"no WebSocket endpoint at {path}: 404 {reason}"
        if status == 426:
            return status, (f"426 {reason} at {path}: the server saw no Upgrade header (a proxy does not pass "
                            "Upgrade/Connection)")
        if status in (200, 400):
            return status, (f"{status} {reason} instead of 101 Switching Protocols at {path}: the upgrade did not "
                            "reach a WebSocket handler (a proxy dropping the Upgrade header?)")
        if status in (401, 403):
            sent = "the token was refused" if target.token else "no token sent: configure auth"
            return status, f"handshake refused: {status} {reason} ({sent})"
        if status >= 500:
            return status, f"handshake fails with a server error: {status} {reason}"
        return status, f"{status} {reason} instead of 101 Switching Protocols at {path}"
    if isinstance(exc, InvalidUpgrade):
        return 101, f"answered without a valid upgrade ({exc}): a proxy mangling Upgrade/Connection headers?"
    if isinstance(exc, InvalidMessage):
        return None, None
    if isinstance(exc, InvalidHandshake):
        return None, f"handshake failed: {type(exc).__name__}"
    return None, None


def unreachable_cause(exc: Exception, target: WebSocketTarget) -> str:
    """One line for a WebSocket that could not be reached at all."""
    from websockets.exceptions import InvalidMessage

    if isinstance(exc, TimeoutError):
        return f"timed out after {target.timeout:g} s opening {target.url}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {target.where}"
    if isinstance(exc, socket.gaierror):
        return f"DNS lookup failed for {urlsplit(target.url).hostname}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate of {target.where} not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {target.where} failed"
    if isinstance(exc, InvalidMessage):
        return f"{target.where} closed the connection or did not answer HTTP to the handshake"
    return f"cannot open {target.url}: {type(exc).__name__}"


@opener("ws", requires="websocket_url", imports=("websockets.sync.client",))
def open_ws(settings: Settings) -> WebSocketTarget:
    """One handshake without a token: the shared reachability result (a refusal is not "down")."""
    assert settings.websocket_url is not None
    secure = urlsplit(settings.websocket_url).scheme == "wss"
    target = WebSocketTarget(settings.websocket_url, settings.timeout, client_context(settings) if secure else None)
    return dataclasses.replace(target, first=target.handshake())


def handshake(target: WebSocketTarget) -> Finding:
    """The WebSocket opens (with the token when there is one)."""
    result = target.handshake() if target.token else target.first
    assert result is not None
    auth = "with the token" if target.token else "without a token"
    outcome = "101 Switching Protocols" if result.ok else result.cause
    evidence = {"handshake": f"{target.url} {auth}: {outcome} in {result.seconds * 1000:.0f} ms"}
    if result.cause is not None:
        return Finding.failed(result.cause, evidence)
    return Finding.passed(evidence)


def ping(target: WebSocketTarget) -> Finding:
    """A ping on a fresh connection gets its pong within the timeout."""
    from websockets.exceptions import ConnectionClosed, InvalidHandshake

    try:
        connection = target.connect()
    except InvalidHandshake as exc:
        _, cause = refusal(exc, target)
        return Finding.failed(f"no WebSocket to ping: {cause or type(exc).__name__}")
    except (OSError, TimeoutError) as exc:
        raise TargetUnreachable("ws", unreachable_cause(exc, target)) from None
    with connection:
        started = time.perf_counter()
        try:
            pong = connection.ping()
        except ConnectionClosed as exc:
            return Finding.failed(f"the server closed the WebSocket before the ping: {_closed(exc)}")
        if not pong.wait(target.timeout):
            return Finding.failed(f"no pong within {target.timeout:g} s: the server (or a proxy) does not answer "
                                  "pings, idle connections will drop")
        if connection.close_code is not None:
            return Finding.failed(f"the server closed the WebSocket during the ping: code {connection.close_code}")
        return Finding.passed({"ping": f"pong after {(time.perf_counter() - started) * 1000:.1f} ms on {target.url}"})


def _closed(exc: Any) -> str:
    received = getattr(exc, "rcvd", None)
    return f"code {received.code} {received.reason}".strip() if received else "no close frame"
