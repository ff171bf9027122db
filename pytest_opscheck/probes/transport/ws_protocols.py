"""What runs on top of a WebSocket, over an open connection (websockets' sync client): Socket.io's engine.io v4
handshake and heartbeat, graphql-transport-ws's `connection_init` → `connection_ack` and ping/pong, and a
look at plain HTTP on the same origin when no WebSocket answers at a path.

engine.io v4 (socket.io protocol v5): the server opens with `0{"sid", "pingInterval", "pingTimeout", ...}`,
the client connects the default namespace with `40` (its auth object after it), the server answers `40{"sid"}`
or `44{"message"}`; the SERVER pings (`2`) every pingInterval and the client answers `3` (a client `2` is a
protocol error in v4). graphql-transport-ws (enisdenjo/graphql-ws): subprotocol `graphql-transport-ws`,
`{"type": "connection_init", "payload"}` answered by `{"type": "connection_ack"}`, closes 4400/4403/4406/4408/4429
for the failures, `{"type": "ping"}` answered by `{"type": "pong"}` either way. The legacy subscriptions-transport-ws
(Apollo Server 2/3, NestJS's installSubscriptionHandlers): subprotocol `graphql-ws`, `connection_init` answered by
`connection_ack` (or `connection_error`), then the server's keep-alive `ka`; no ping message of its own, so its
heartbeat is a ping frame's pong. A plain WebSocket that the server closes right after the upgrade (a close code
such as 1002 or 4406: it wants a subprotocol) is named with its code at once.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SOCKET_IO_PATH = "/socket.io/"
GRAPHQL_TRANSPORT_WS = "graphql-transport-ws"
GRAPHQL_WS = "graphql-ws"  # the legacy subscriptions-transport-ws protocol
# How long a plain WebSocket is watched after the upgrade for a close that answers the open itself.
EARLY_CLOSE = 0.25
# The longest the heartbeat probe waits for a server's engine.io ping, whatever pingInterval it announces.
HEARTBEAT_LIMIT = 60.0
_GRAPHQL_CLOSES = {
    4400: "the server found connection_init invalid",
    4401: "the server wants connection_init first",
    4403: "connection_init refused",
    4406: "the server does not accept the graphql-transport-ws subprotocol",
    4408: "connection_init came too late for the server",
    4429: "the server got connection_init twice",
}


@dataclass(frozen=True)
class Greeting:
    """How a protocol's own handshake went: `cause` None when it did; what it said; engine.io's heartbeat."""

    cause: str | None
    detail: str = ""
    ping_interval: float | None = None  # seconds, from engine.io's open packet
    ping_timeout: float | None = None


def socket_io_url(url: str) -> str:
    """The engine.io URL a Socket.io client opens for `url`: /socket.io/ when no path is given, a trailing slash
    (engine.io matches the path with one), and EIO=4&transport=websocket in the query."""
    parts = urlsplit(url)
    path = parts.path if parts.path not in ("", "/") else SOCKET_IO_PATH
    path = path.rstrip("/") + "/"
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.setdefault("EIO", "4")
    query["transport"] = "websocket"
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def greet(
    connection: Any, protocol: str, timeout: float, token: str | None, headers: dict[str, str] | None = None
) -> Greeting:
    """The protocol's own handshake on a freshly opened connection (plain: a close right after the upgrade).
    `headers`: the credential as the GraphQL protocols' connection_init payload carries it."""
    payload = headers if headers is not None else ({"Authorization": f"Bearer {token}"} if token else {})
    if protocol == "socket.io":
        return _greet_socket_io(connection, timeout, token)
    if protocol == GRAPHQL_TRANSPORT_WS:
        return _greet_graphql(connection, timeout, token, payload)
    if protocol == GRAPHQL_WS:
        return _greet_legacy(connection, timeout, token, payload)
    return _early_close(connection, min(EARLY_CLOSE, timeout))


def _early_close(connection: Any, seconds: float) -> Greeting:
    """A plain WebSocket the server closes at once (a protocol it wants and was not offered): its close code."""
    from websockets.exceptions import ConnectionClosed

    try:
        connection.recv(timeout=seconds)
    except TimeoutError:
        return Greeting(None)
    except ConnectionClosed as exc:
        code = getattr(getattr(exc, "rcvd", None), "code", None)
        wants = (" (it wants a subprotocol: a GraphQL server? set websocket_protocol)"
                 if code in (1002, 4406, 4400) else "")
        return Greeting(f"the server closed the WebSocket right after the upgrade: {closed_how(exc)}{wants}")
    return Greeting(None)


def _greet_legacy(connection: Any, timeout: float, token: str | None, payload: dict[str, str]) -> Greeting:
    """subscriptions-transport-ws: connection_init → connection_ack (a `ka` may come first or after)."""
    from websockets.exceptions import ConnectionClosed

    chosen = connection.subprotocol
    if chosen != GRAPHQL_WS:
        return Greeting(f"the server opened the WebSocket without the {GRAPHQL_WS} subprotocol (it chose "
                        f"{chosen or 'none'}): it speaks another protocol on this path")
    started = time.monotonic()
    try:
        connection.send(json.dumps({"type": "connection_init", "payload": payload}))
        while (message := _recv(connection, started + timeout)) is not None:
            kind = _graphql_type(message)
            if kind == "connection_ack":
                return Greeting(None, f"subprotocol {GRAPHQL_WS} (subscriptions-transport-ws); connection_init → "
                                      f"connection_ack in {(time.monotonic() - started) * 1000:.0f} ms")
            if kind == "connection_error":
                said = _legacy_error(message)
                how = "the token was refused" if token else 'no token sent: set websocket_token to "header"'
                return Greeting(f"connection_init refused with connection_error: {said} ({how})")
    except ConnectionClosed as exc:
        return Greeting(f"the server closed the WebSocket after connection_init: {closed_how(exc)}")
    return Greeting(f"no connection_ack within {timeout:g} s of connection_init ({GRAPHQL_WS})")


def _legacy_error(message: str | bytes) -> str:
    try:
        data = json.loads(message)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return _excerpt(message)
    payload = data.get("payload") if isinstance(data, dict) else None
    said = payload.get("message") if isinstance(payload, dict) else payload
    return f'"{" ".join(said.split())[:120]}"' if isinstance(said, str) else _excerpt(message)


def speaks_legacy(connection: Any, timeout: float) -> bool:
    """Whether an open `graphql-ws` connection answers connection_init with connection_ack (the legacy protocol)."""
    return _greet_legacy(connection, timeout, None, {}).cause is None


def _recv(connection: Any, deadline: float) -> str | bytes | None:
    """The next message before `deadline` (monotonic), None at the deadline; ConnectionClosed when closed."""
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    try:
        message: str | bytes = connection.recv(timeout=left)
    except TimeoutError:
        return None
    return message


def closed_how(exc: Any) -> str:
    """`code 4403 Forbidden`, or that no close frame came (or that a message was over the size limit)."""
    from .websocket import over_limit

    if too_big := over_limit(exc):
        return too_big
    received = getattr(exc, "rcvd", None)
    return f"code {received.code} {received.reason}".strip() if received else "no close frame"


def _greet_socket_io(connection: Any, timeout: float, token: str | None) -> Greeting:
    from websockets.exceptions import ConnectionClosed

    started = time.monotonic()
    deadline = started + timeout
    try:
        first = _recv(connection, deadline)
    except ConnectionClosed as exc:
        return Greeting(f"the server closed the WebSocket before its engine.io open packet ({closed_how(exc)})")
    if first is None:
        return Greeting(f"no engine.io open packet within {timeout:g} s of the upgrade: no Socket.io server at "
                        "this path (is websocket_protocol right?)")
    if not isinstance(first, str) or not first.startswith("0{"):
        return Greeting(f"the server's first message is not an engine.io open packet ({_excerpt(first)}): no "
                        "Socket.io server at this path (is websocket_protocol right?)")
    try:
        opened = json.loads(first[1:])
        interval, ping_timeout = float(opened["pingInterval"]) / 1000, float(opened["pingTimeout"]) / 1000
    except (ValueError, KeyError, TypeError, RecursionError):
        return Greeting(f"the engine.io open packet does not parse ({_excerpt(first)})")
    heartbeat = f"pingInterval {interval * 1000:.0f} ms, pingTimeout {ping_timeout * 1000:.0f} ms"
    sent = time.monotonic()
    try:
        connection.send("40" + (json.dumps({"token": token}) if token else ""))
        while (message := _recv(connection, deadline)) is not None:
            if message == "2":  # the server's heartbeat may come first on a short pingInterval
                connection.send("3")
            elif isinstance(message, str) and message.startswith("40"):
                detail = (f"engine.io open ({heartbeat}); socket.io CONNECT / → 40 in "
                          f"{(time.monotonic() - sent) * 1000:.0f} ms")
                return Greeting(None, detail, interval, ping_timeout)
            elif isinstance(message, str) and message.startswith("44"):
                said = _socket_io_error(message[2:])
                how = "the token was refused" if token else 'no token sent: set websocket_token to "header"'
                return Greeting(f"Socket.io refused the connection to namespace /: {said} ({how})",
                                f"engine.io open ({heartbeat})")
            elif message == "1" or message == "41":
                return Greeting("the server closed the Socket.io session right after the CONNECT "
                                f"({'engine.io close' if message == '1' else 'socket.io DISCONNECT'})")
    except ConnectionClosed as exc:
        return Greeting(f"the server closed the WebSocket after the socket.io CONNECT ({closed_how(exc)})")
    return Greeting(f"no socket.io CONNECT answer (40) within {timeout:g} s", f"engine.io open ({heartbeat})")


def _socket_io_error(payload: str) -> str:
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return _excerpt(payload) if payload else "no reason given"
    message = data.get("message") if isinstance(data, dict) else data
    return f'"{message}"' if isinstance(message, str) else _excerpt(payload)


def server_ping(connection: Any, greeting: Greeting, since: float, limit: float) -> tuple[str | None, str]:
    """Wait for the server's engine.io ping (due pingInterval after the open at `since`, monotonic; the client
    gives up after pingInterval + pingTimeout) and answer it: (cause, detail). A sweep waits that long only when it
    is within twice `limit` (the probe timeout); on a longer heartbeat it waits `limit` for the ping, and when the
    ping is not due by then, a WebSocket ping frame's pong is what it can prove."""
    from websockets.exceptions import ConnectionClosed

    interval, grace = greeting.ping_interval or 0.0, greeting.ping_timeout or 0.0
    due = min(interval + grace, HEARTBEAT_LIMIT)
    waited = due if due <= 2 * limit else limit
    try:
        while (message := _recv(connection, since + waited)) is not None:
            if message == "2":
                connection.send("3")
                after = time.monotonic() - since
                return None, f"engine.io ping after {after:.1f} s (pingInterval {interval:g} s), answered with 3"
            if message == "1":
                return "the server closed the engine.io session before its first ping", ""
        if waited < due:
            started = time.monotonic()
            if not connection.ping().wait(max(limit / 2, 0.5)):
                return f"no pong to a WebSocket ping within {max(limit / 2, 0.5):g} s", ""
            return None, (f"engine.io ping not due within the probe timeout {limit:g} s (pingInterval {interval:g} s):"
                          f" the connection answered a ping frame in {(time.monotonic() - started) * 1000:.0f} ms")
    except ConnectionClosed as exc:
        return f"the server closed the WebSocket before its first engine.io ping ({closed_how(exc)})", ""
    return (f"no engine.io ping from the server within {waited:g} s (pingInterval {interval:g} s + pingTimeout "
            f"{grace:g} s): its heartbeat is stuck, clients drop with \"ping timeout\" and reconnect"), ""


def _greet_graphql(connection: Any, timeout: float, token: str | None, payload: dict[str, str]) -> Greeting:
    from websockets.exceptions import ConnectionClosed

    chosen = connection.subprotocol
    if chosen != GRAPHQL_TRANSPORT_WS:
        return Greeting(f"the server opened the WebSocket without the {GRAPHQL_TRANSPORT_WS} subprotocol "
                        f"(it chose {chosen or 'none'}): it speaks another protocol on this path")
    started = time.monotonic()
    deadline = started + timeout
    try:
        connection.send(json.dumps({"type": "connection_init", "payload": payload}))
        while (message := _recv(connection, deadline)) is not None:
            kind = _graphql_type(message)
            if kind == "ping":
                connection.send(json.dumps({"type": "pong"}))
            elif kind == "connection_ack":
                return Greeting(None, f"subprotocol {GRAPHQL_TRANSPORT_WS}; connection_init → connection_ack in "
                                      f"{(time.monotonic() - started) * 1000:.0f} ms")
    except ConnectionClosed as exc:
        return Greeting(_graphql_closed(exc, token))
    return Greeting(f"no connection_ack within {timeout:g} s of connection_init")


def _graphql_closed(exc: Any, token: str | None) -> str:
    received = getattr(exc, "rcvd", None)
    code = received.code if received else None
    what = _GRAPHQL_CLOSES.get(code or 0, "the server closed the WebSocket after connection_init")
    if code == 4403:
        what += " (the token was refused)" if token else ' (no token sent: set websocket_token to "header")'
    return f"{what}: {closed_how(exc)}"


def graphql_ping(connection: Any, timeout: float) -> tuple[str | None, str]:
    """A graphql-transport-ws ping gets its pong within `timeout`: (cause, detail)."""
    from websockets.exceptions import ConnectionClosed

    started = time.monotonic()
    try:
        connection.send(json.dumps({"type": "ping"}))
        while (message := _recv(connection, started + timeout)) is not None:
            kind = _graphql_type(message)
            if kind == "pong":
                return None, f"graphql-transport-ws pong after {(time.monotonic() - started) * 1000:.1f} ms"
            if kind == "ping":
                connection.send(json.dumps({"type": "pong"}))
    except ConnectionClosed as exc:
        return f"the server closed the WebSocket on a graphql-transport-ws ping ({closed_how(exc)})", ""
    return (f"no graphql-transport-ws pong within {timeout:g} s: the server (or a proxy) does not answer, "
            "idle subscriptions will drop"), ""


def _graphql_type(message: str | bytes) -> str:
    try:
        data = json.loads(message)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return ""
    return str(data.get("type", "")) if isinstance(data, dict) else ""


def _excerpt(message: str | bytes | None) -> str:
    if isinstance(message, bytes):
        return f"{len(message)} bytes of binary"
    text = " ".join((message or "").split())
    return repr(text[:60] + ("…" if len(text) > 60 else ""))


def same_origin_http(url: str, timeout: float, context: ssl.SSLContext | None) -> str | None:
    """GET the WebSocket's path as plain HTTP (no upgrade): `GET /realtime → 404 Not Found in 3 ms`, or None
    when HTTP does not answer there either."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname or ""
    started = time.perf_counter()
    connection: http.client.HTTPConnection
    if parts.scheme == "wss":
        connection = http.client.HTTPSConnection(host, parts.port or 443, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(host, parts.port or 80, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        response.read(4096)
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()
    seconds = time.perf_counter() - started
    return f"GET {parts.path or '/'} → {response.status} {response.reason} in {seconds * 1000:.0f} ms"
