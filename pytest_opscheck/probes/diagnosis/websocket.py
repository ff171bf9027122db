"""The WebSocket: the handshake upgrades (a non-upgrade answer named for what it is), and a ping gets its pong."""

from __future__ import annotations

import time
from typing import Any

from ..resource.websocket import WebSocketTarget
from ..result import Finding, TargetUnreachable
from ..transport.websocket import refusal, unreachable_cause


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
