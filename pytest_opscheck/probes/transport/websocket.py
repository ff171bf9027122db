"""WebSocket connections (websockets' sync client): the opening handshake, a non-upgrade answer named for
what it is, and the cause of a WebSocket that cannot be reached at all."""

from __future__ import annotations

import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from ..result import TargetUnreachable
from .web import Credential

# The largest message the sweep reads (websockets' default, made explicit): a longer frame is refused from its
# header, unread, with close code 1009.
MESSAGE_LIMIT = 2**20


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
class WebSocketEndpoint:
    """One WebSocket URL: `connect()` opens a connection (websockets' sync client), with the token when set."""

    url: str
    timeout: float
    context: ssl.SSLContext | None
    token: str | None = field(default=None, repr=False)
    token_in: str = "header"  # "header": the credential's headers; "query": ?token= (never in `url`, never shown)
    subprotocols: tuple[str, ...] = ()
    # What the token rides with, and where it may go (`Credential.carried`): none when its origins do not admit
    # this URL (another origin, or ws:// for a credential obtained over https).
    credential: Credential | None = field(default=None, repr=False)

    @property
    def sent_token(self) -> str | None:
        """The token as this URL may receive it (None: no token, or the credential does not go there)."""
        if self.token is None or (self.credential is not None and not self.credential.admits(self.url)):
            return None
        return self.token

    def auth_headers(self) -> dict[str, str]:
        """The headers the upgrade carries (and a GraphQL connection_init's payload)."""
        if self.credential is not None:
            return self.credential.carried(self.url)
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def where(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'wss' else 80)}"

    def connect(self, **kwargs: Any) -> Any:
        """An open `websockets.sync.client.ClientConnection` (close it, or use it in a `with`)."""
        from websockets.sync.client import connect

        headers = (self.auth_headers() or None) if self.token_in == "header" else None
        url = self.url
        if self.sent_token and self.token_in == "query":
            url += ("&" if urlsplit(url).query else "?") + urlencode({"token": self.sent_token})
        options: dict[str, Any] = {
            "open_timeout": self.timeout,
            "close_timeout": min(self.timeout, 1.0),
            "ping_interval": None,
            "proxy": None,
            "additional_headers": headers,
            "ssl": self.context,
            "max_size": MESSAGE_LIMIT,
        }
        if self.subprotocols:
            options["subprotocols"] = list(self.subprotocols)
        return connect(url, **{**options, **kwargs})

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


def refusal(exc: Exception, target: WebSocketEndpoint) -> tuple[int | None, str | None]:
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
            sent = "the token was refused" if target.sent_token else _unsent(target)
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


def _unsent(target: WebSocketEndpoint) -> str:
    if target.token and target.credential is not None and not target.credential.admits(target.url):
        return "the credential was not sent: it was obtained over https and this WebSocket is ws://, or another origin"
    return 'no token sent: set websocket_token to "header"'


def unreachable_cause(exc: Exception, target: WebSocketEndpoint) -> str:
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


def over_limit(closed: object) -> str | None:
    """The cause when the client closed the connection (1009) on a message over `MESSAGE_LIMIT`, else None;
    `closed` is the `ConnectionClosed` raised, or the connection itself (closed while a ping waited)."""
    sent = getattr(closed, "sent", None) or getattr(getattr(closed, "protocol", None), "close_sent", None)
    if sent is None or getattr(sent, "code", None) != 1009:
        return None
    size = re.search(r"(\d+) bytes", str(getattr(sent, "reason", "")))
    got = f" (a frame of {int(size.group(1)):,} bytes)" if size else ""
    return (f"the server sent a message over the {MESSAGE_LIMIT // 2**20} MiB message limit{got}: the WebSocket "
            "was closed with 1009 (message too big)")
