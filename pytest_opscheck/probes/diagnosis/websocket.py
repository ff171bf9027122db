"""The WebSocket: the handshake upgrades and the protocol on top greets back (engine.io's open and socket.io's
CONNECT, graphql-transport-ws's connection_ack), and the heartbeat answers: a pong to a ping frame, the
server's own engine.io ping, a graphql-transport-ws pong."""

from __future__ import annotations

import time
from typing import Any

from ..resource.websocket import Opened, WebSocketTarget
from ..result import Finding
from ..transport.websocket import over_limit
from ..transport.ws_protocols import closed_how, graphql_ping, server_ping


def _sent(target: WebSocketTarget) -> str:
    if target.sent_token:
        if target.token_in == "query":
            return "with the token as a query parameter"
        if target.token_header:
            return f"with the token in {target.token_header}"
        return "with the token as a bearer" if target.scheme == "Bearer" else f"with the token as {target.scheme}"
    if target.token:
        return "without the token (the credential does not go to this URL: another origin, or ws:// after https)"
    return "without a token" + (" (websocket_token none)" if not target.needs_token else "")


def handshake(target: WebSocketTarget) -> Finding:
    """The WebSocket opens (with the token when it takes one) and its protocol greets back."""
    result = target.handshake() if target.token else target.first
    assert result is not None
    outcome = "101 Switching Protocols" if result.status == 101 else f"answered {result.status}" if result.status \
        else "no answer to the upgrade"
    evidence = {"handshake": f"{target.url} {_sent(target)}: {outcome} in {result.seconds * 1000:.0f} ms"}
    if target.protocol != "plain":
        evidence[target.protocol] = (result.detail or result.cause or "") if result.status == 101 else "not reached"
    if result.cause is not None:
        return Finding.failed(result.cause, evidence)
    return Finding.passed(evidence)


def ping(target: WebSocketTarget) -> Finding:
    """The heartbeat answers on a fresh connection: a ping frame's pong (plain), the server's engine.io ping
    (Socket.io, due pingInterval after the open), a graphql-transport-ws pong."""
    first = target.first
    if not target.token and first is not None and first.cause is not None:
        return Finding.failed(f"no WebSocket to ping: {first.cause}")
    with target.session() as (opened, connection):
        if connection is None:
            return Finding.failed(f"no WebSocket to ping: {opened.cause}")
        return _heartbeat(target, opened, connection)


def _heartbeat(target: WebSocketTarget, opened: Opened, connection: Any) -> Finding:
    from websockets.exceptions import ConnectionClosed

    if target.protocol == "socket.io":
        assert opened.greeting is not None
        cause, detail = server_ping(connection, opened.greeting, opened.since, target.timeout)
        return Finding.failed(cause) if cause else Finding.passed({"heartbeat": f"{detail} on {target.url}"})
    if target.protocol == "graphql-transport-ws":
        cause, detail = graphql_ping(connection, target.timeout)
        return Finding.failed(cause) if cause else Finding.passed({"ping": f"{detail} on {target.url}"})
    # plain, and the legacy graphql-ws (no ping message of its own: its server keeps alive with `ka`)
    started = time.perf_counter()
    try:
        pong = connection.ping()
    except ConnectionClosed as exc:
        return Finding.failed(over_limit(exc) or f"the server closed the WebSocket before the ping: {closed_how(exc)}")
    deadline = time.monotonic() + target.timeout  # not waited out once the connection is closed
    while (not pong.wait(0.05) and over_limit(connection) is None and connection.close_code is None
           and time.monotonic() < deadline):
        pass
    if not pong.is_set() and connection.close_code is not None and over_limit(connection) is None:
        reason = f" {connection.close_reason}" if connection.close_reason else ""
        return Finding.failed(f"the server closed the WebSocket instead of answering the ping: code "
                              f"{connection.close_code}{reason}")
    if not pong.is_set():
        return Finding.failed(over_limit(connection) or f"no pong within {target.timeout:g} s: the server (or a "
                              "proxy) does not answer pings, idle connections will drop")
    if connection.close_code is not None:
        return Finding.failed(f"the server closed the WebSocket during the ping: code {connection.close_code}")
    return Finding.passed({"ping": f"pong after {(time.perf_counter() - started) * 1000:.1f} ms on {target.url}"})
