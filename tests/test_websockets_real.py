"""WebSockets as real applications run them, on 127.0.0.1: a channel that takes no token while the login is
broken, a path with no WebSocket handler, Socket.io (python-socketio under uvicorn: engine.io v4, the server
pings) and graphql-transport-ws (strawberry), each on its healthy and its broken side."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql_servers import LOGIN_MUTATION, GraphQLState, graphql_app
from servers import SMOKE_PASSWORD, SMOKE_USER, Faults, Uvicorn, serving, websocket_server
from test_checks_edge import sweep
from ws_servers import SocketIoState, closing_upgrade_server, realtime_app, socketio_app

from pytest_opscheck.config import Settings, settings_from_table
from pytest_opscheck.probes.diagnosis import websocket as probe
from pytest_opscheck.probes.resource.websocket import NO_HANDLER, open_ws
from pytest_opscheck.probes.transport.ws_protocols import server_ping, socket_io_url

WS = "ws.handshake or ws.ping"
LOGIN = ('[auth]\nlogin_path = "/api/auth/login"\nstyle = "json"\nusername_field = "email"\n'
         f'username = "{SMOKE_USER}"\npassword = "${{OPSCHECK_PASSWORD}}"\n')
GRAPHQL_LOGIN = ('[auth]\nlogin_path = "/graphql"\nstyle = "graphql"\n'
                 f'query = {json.dumps(LOGIN_MUTATION)}\ntoken_field = "data.login.accessToken"\n'
                 f'username = "{SMOKE_USER}"\npassword = "${{OPSCHECK_PASSWORD}}"\n')


@pytest.fixture(scope="module")
def faults() -> Faults:
    return Faults()


@pytest.fixture(scope="module")
def locks() -> tuple[SocketIoState, GraphQLState]:
    return SocketIoState(), GraphQLState()


@pytest.fixture(autouse=True)
def healthy(faults: Faults, locks: tuple[SocketIoState, GraphQLState], monkeypatch: pytest.MonkeyPatch) -> None:
    faults.active.clear()
    locks[0].token_required = locks[1].ws_token = False
    monkeypatch.setenv("OPSCHECK_PASSWORD", SMOKE_PASSWORD)


@pytest.fixture(scope="module")
def backend(faults: Faults) -> Iterator[Uvicorn]:
    with serving(realtime_app(faults)) as server:
        yield server


@pytest.fixture(scope="module")
def sio(faults: Faults, locks: tuple[SocketIoState, GraphQLState]) -> Iterator[Uvicorn]:
    """Socket.io on /socket.io/ beside the backend's login (the same origin, as a NestJS gateway)."""
    with serving(socketio_app(locks[0], other=realtime_app(faults))) as server:
        yield server


@pytest.fixture(scope="module")
def gql(faults: Faults, locks: tuple[SocketIoState, GraphQLState]) -> Iterator[Uvicorn]:
    with serving(graphql_app(faults, locks[1])) as server:
        yield server


def ws_url(server: Uvicorn, path: str = "") -> str:
    return server.url.replace("http://", "ws://") + path


def config(server: Uvicorn, websocket_url: str, login: str = "", **keys: str) -> str:
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
    return f'backend_url = "{server.url}"\nwebsocket_url = "{websocket_url}"\ntimeout = 1\n{lines}{login}'


def settings(url: str, **keys: Any) -> Settings:
    return settings_from_table({"websocket_url": url, "timeout": 1.0, **keys}, Path("opscheck.toml"), environ={})


# --- a channel that takes no token, while the login is broken --------------------------------------------


def test_no_token_channel_passes_while_the_login_is_broken(
    pytester: pytest.Pytester, backend: Uvicorn, faults: Faults
) -> None:
    faults.active.add("login_broken")
    records = sweep(pytester, config(backend, ws_url(backend, "/realtime"), LOGIN), f"auth.login or {WS}", faults)
    assert records["auth.login"]["outcome"] == "failed"
    for check in ("ws.handshake", "ws.ping"):
        assert records[check]["outcome"] == "passed", records[check]
        assert records[check].get("caused_by") is None
    assert "without a token (websocket_token none)" in records["ws.handshake"]["evidence"]["handshake"]

    # The same broken login, on a channel that takes the token: now the ws checks fail because of it.
    records = sweep(pytester, config(backend, ws_url(backend, "/private"), LOGIN, websocket_token="header"),
                    f"auth.login or {WS}", faults)
    for check in ("ws.handshake", "ws.ping"):
        assert records[check]["outcome"] == "failed"
        assert records[check]["caused_by"] == "auth.login"
        assert records[check]["message"] == (
            "auth: login /api/auth/login fails with a server error: 500 Internal Server Error")


@pytest.mark.parametrize(("path", "token", "outcome"), [
    ("/private", "header", "passed"),
    ("/private", "query", "passed"),
    ("/private", "none", "failed"),
])
def test_websocket_token_modes(
    pytester: pytest.Pytester, backend: Uvicorn, faults: Faults, path: str, token: str, outcome: str
) -> None:
    records = sweep(pytester, config(backend, ws_url(backend, path), LOGIN, websocket_token=token), WS, faults)
    assert records["ws.handshake"]["outcome"] == outcome, records["ws.handshake"]
    if outcome == "failed":
        assert records["ws.handshake"]["message"] == (
            'handshake refused: 403 Forbidden (no token sent: set websocket_token to "header")')
    else:
        assert records["ws.ping"]["outcome"] == "passed"
        sent = "as a bearer" if token == "header" else "as a query parameter"
        assert f"/private with the token {sent}: 101 Switching Protocols" in (
            records["ws.handshake"]["evidence"]["handshake"])


# --- a path where no WebSocket answers ---------------------------------------------------------------------


def test_path_without_a_websocket_handler(pytester: pytest.Pytester, backend: Uvicorn) -> None:
    """The server never answers the upgrade at /events, while plain HTTP there answers 404 at once."""
    records = sweep(pytester, config(backend, ws_url(backend, "/events")), WS)
    message = records["ws.handshake"]["message"]
    assert message.startswith(f"{NO_HANDLER}: timed out after 1 s upgrading {ws_url(backend, '/events')}, "
                              "while GET /events → 404 Not Found in "), message
    assert records["ws.ping"]["caused_by"] == "ws.handshake"


def test_upgrade_closed_without_an_answer(tmp_path: Path) -> None:
    """engine.io's destroyUpgrade on a path it does not serve: the socket closes without a byte."""
    with closing_upgrade_server() as port:
        finding = probe.handshake(open_ws(settings(f"ws://127.0.0.1:{port}/realtime")))
    assert finding.cause == (f"{NO_HANDLER}: 127.0.0.1:{port} closed the connection or did not answer HTTP to the "
                             f"handshake, while GET /realtime → 404 Not Found in " + finding.cause.rsplit(" in ")[-1])


# --- Socket.io -----------------------------------------------------------------------------------------------


def test_socketio_healthy(pytester: pytest.Pytester, sio: Uvicorn, faults: Faults) -> None:
    records = sweep(pytester, config(sio, ws_url(sio), websocket_protocol="socket.io"), WS, faults)
    handshake, ping = records["ws.handshake"], records["ws.ping"]
    assert handshake["outcome"] == "passed" and ping["outcome"] == "passed", records
    assert handshake["evidence"]["handshake"].startswith(
        f"{ws_url(sio)}/socket.io/?EIO=4&transport=websocket without a token")
    assert handshake["evidence"]["socket.io"].startswith(
        "engine.io open (pingInterval 1000 ms, pingTimeout 1000 ms); socket.io CONNECT / → 40 in ")
    # Due 1 s after the open packet (the clock here starts a little later, after the CONNECT's answer).
    assert re.match(r"engine\.io ping after [01]\.\d s \(pingInterval 1 s\), answered with 3 on ",
                    ping["evidence"]["heartbeat"]), ping["evidence"]


def test_socketio_connect_refused_and_with_the_token(
    pytester: pytest.Pytester, sio: Uvicorn, faults: Faults, locks: tuple[SocketIoState, GraphQLState]
) -> None:
    locks[0].token_required = True
    records = sweep(pytester, config(sio, ws_url(sio), LOGIN, websocket_protocol="socket.io"), WS, faults)
    assert records["ws.handshake"]["message"] == (
        'Socket.io refused the connection to namespace /: "authentication failed" (no token sent: set '
        'websocket_token to "header")')
    records = sweep(pytester, config(sio, ws_url(sio), LOGIN, websocket_protocol="socket.io",
                                     websocket_token="header"), WS, faults)
    assert records["ws.handshake"]["outcome"] == "passed", records["ws.handshake"]
    assert records["ws.ping"]["outcome"] == "passed", records["ws.ping"]


def test_socketio_expected_on_a_plain_websocket() -> None:
    with websocket_server() as url:
        finding = probe.handshake(open_ws(settings(url, websocket_protocol="socket.io")))
    assert finding.cause == ("no engine.io open packet within 1 s of the upgrade: no Socket.io server at this path "
                             "(is websocket_protocol right?)")


def test_socketio_heartbeat_stuck() -> None:
    """The server's event loop blocked (a sync call in an async handler): its engine.io ping never comes."""
    with serving(socketio_app(SocketIoState(), ping_interval=2.0)) as server:  # 2 s for the blocker to land
        target = open_ws(settings(ws_url(server), websocket_protocol="socket.io"))
        with target.session() as (opened, connection):
            assert connection is not None and opened.greeting is not None
            blocker = threading.Thread(target=httpx.get, args=(f"{server.url}/block?seconds=4",),
                                       kwargs={"timeout": 10})
            blocker.start()
            cause, _ = server_ping(connection, opened.greeting, opened.since, 5.0)
            blocker.join()
    assert cause == ('no engine.io ping from the server within 3 s (pingInterval 2 s + pingTimeout 1 s): its '
                     'heartbeat is stuck, clients drop with "ping timeout" and reconnect')


@pytest.mark.parametrize(("url", "expected"), [
    ("ws://h:3001", "ws://h:3001/socket.io/?EIO=4&transport=websocket"),
    ("ws://h:3001/", "ws://h:3001/socket.io/?EIO=4&transport=websocket"),
    ("wss://h/realtime", "wss://h/realtime/?EIO=4&transport=websocket"),
    ("ws://h/socket.io/?EIO=4&transport=websocket", "ws://h/socket.io/?EIO=4&transport=websocket"),
])
def test_socket_io_url_is_the_clients(url: str, expected: str) -> None:
    assert socket_io_url(url) == expected


# --- graphql-transport-ws ------------------------------------------------------------------------------------


def test_graphql_transport_ws_healthy(pytester: pytest.Pytester, gql: Uvicorn, faults: Faults) -> None:
    records = sweep(pytester, config(gql, ws_url(gql, "/graphql"), websocket_protocol="graphql-transport-ws"),
                    WS, faults)
    assert records["ws.handshake"]["outcome"] == "passed", records["ws.handshake"]
    assert records["ws.handshake"]["evidence"]["graphql-transport-ws"].startswith(
        "subprotocol graphql-transport-ws; connection_init → connection_ack in ")
    assert records["ws.ping"]["evidence"]["ping"].startswith("graphql-transport-ws pong after ")


def test_graphql_transport_ws_refused_and_with_the_token(
    pytester: pytest.Pytester, gql: Uvicorn, faults: Faults, locks: tuple[SocketIoState, GraphQLState]
) -> None:
    """onConnect wants a bearer in connection_init's payload: 4403 without it; the GraphQL login's token opens."""
    locks[1].ws_token = True
    url = ws_url(gql, "/graphql")
    records = sweep(pytester, config(gql, url, GRAPHQL_LOGIN, websocket_protocol="graphql-transport-ws"), WS, faults)
    assert records["ws.handshake"]["message"] == (
        'connection_init refused (no token sent: set websocket_token to "header"): code 4403 Forbidden')
    assert records["ws.ping"]["caused_by"] == "ws.handshake"
    records = sweep(pytester, config(gql, url, GRAPHQL_LOGIN, websocket_protocol="graphql-transport-ws",
                                     websocket_token="header"), WS, faults)
    assert records["ws.handshake"]["outcome"] == "passed", records["ws.handshake"]
    assert records["ws.ping"]["outcome"] == "passed", records["ws.ping"]


def test_graphql_transport_ws_on_a_legacy_server(faults: Faults) -> None:
    with serving(graphql_app(faults, legacy_only=True)) as legacy:
        finding = probe.handshake(open_ws(settings(ws_url(legacy, "/graphql"),
                                                   websocket_protocol="graphql-transport-ws")))
    assert finding.cause == (
        "the server opened the WebSocket without the graphql-transport-ws subprotocol (it chose none): it speaks "
        'another protocol on this path; it speaks the legacy subscriptions-transport-ws protocol (subprotocol '
        '"graphql-ws"): set websocket_protocol = "graphql-ws"')


@pytest.mark.parametrize(("keys", "message"), [
    ({"websocket_token": "header"}, 'websocket_token "header": the token comes from the login: configure [auth]'),
    ({"websocket_url": "ws://h/socket.io/?EIO=3", "websocket_protocol": "socket.io"},
     "websocket_url: EIO=3 is not engine.io v4"),
    ({"websocket_protocol": "stomp"}, "websocket_protocol: expected 'plain' or 'socket.io' or 'graphql-transport-ws'"),
])
def test_websocket_config_errors(keys: dict[str, str], message: str) -> None:
    from pytest_opscheck.config import ConfigError

    with pytest.raises(ConfigError) as error:
        settings(keys.pop("websocket_url", "ws://h/realtime"), **keys)
    assert str(error.value).startswith(f"opscheck.toml: {message}")
    assert "\n" not in str(error.value)


def test_socketio_long_heartbeat_is_not_waited_for_beyond_the_timeout() -> None:
    """Socket.io's default pingInterval is 25 s: a sweep does not wait for it, the pong to a ping frame stands in."""
    with serving(socketio_app(SocketIoState(), ping_interval=25.0)) as server:
        target = open_ws(settings(ws_url(server), websocket_protocol="socket.io"))
        with target.session() as (opened, connection):
            assert connection is not None and opened.greeting is not None
            started = time.monotonic()
            cause, detail = server_ping(connection, opened.greeting, opened.since, 1.0)
            elapsed = time.monotonic() - started
    assert cause is None
    assert detail.startswith("engine.io ping not due within the probe timeout 1 s (pingInterval 25 s): ")
    assert elapsed < 3
