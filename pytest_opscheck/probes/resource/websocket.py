"""The configured WebSocket, with the outcome of one handshake without a token (a refusal is not "down")."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from urllib.parse import urlsplit

from ...config import Settings
from ..transport.tls import client_context
from ..transport.websocket import Handshake, WebSocketEndpoint


@dataclass(frozen=True)
class WebSocketTarget(WebSocketEndpoint):
    """The configured WebSocket: `connect()` opens one (websockets' sync client), with the token when set;
    `first` is the handshake made when the sweep opened it."""

    first: Handshake | None = None

    def with_token(self, token: str | None) -> WebSocketTarget:
        return dataclasses.replace(self, token=token)

    def close(self) -> None:
        """Nothing stays open: every probe closes its own connection."""


def open_ws(settings: Settings) -> WebSocketTarget:
    """One handshake without a token: the shared reachability result (a refusal is not "down")."""
    assert settings.websocket_url is not None
    secure = urlsplit(settings.websocket_url).scheme == "wss"
    target = WebSocketTarget(settings.websocket_url, settings.timeout, client_context(settings) if secure else None)
    return dataclasses.replace(target, first=target.handshake())
