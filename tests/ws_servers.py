"""Real WebSocket servers for the WebSocket tests, run under uvicorn with `servers.serving`:

- `realtime_app`: a backend (Starlette) whose JSON login may be broken, with a WebSocket that takes no token
  (`/realtime`), one that takes a bearer (`/private`), and, as a Node http server whose `upgrade` listener
  handles one path only, no answer at all to an upgrade on any other path while plain HTTP answers at once;
- `socketio_app`: python-socketio's ASGI app (engine.io v4, the server pings every `ping_interval`), whose
  connect handler may require a token (`auth.token` or a bearer header), beside a small HTTP app;
- `closing_upgrade_server`: a raw server that closes an upgrade without a byte (engine.io's `destroyUpgrade`
  on a path it does not serve) and answers plain HTTP with 404.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import socketio
from servers import SMOKE_PASSWORD, SMOKE_USER, Faults, make_jwt, valid_jwt


def realtime_app(faults: Faults) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    async def login(request: Request) -> Response:
        if "login_broken" in faults:
            return PlainTextResponse("Internal Server Error", status_code=500)
        data = await request.json()
        if data.get("email") != SMOKE_USER or data.get("password") != SMOKE_PASSWORD:
            return JSONResponse({"statusCode": 401, "message": "Unauthorized"}, status_code=401)
        token = make_jwt(SMOKE_USER, 3600)
        faults.tokens.append(token)
        return JSONResponse({"accessToken": token})

    def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except Exception:  # noqa: BLE001 - the client went away
            return

    async def private(websocket: WebSocket) -> None:
        value = websocket.headers.get("authorization", "")
        token = websocket.query_params.get("token", "")
        if not (value.startswith("Bearer ") and valid_jwt(value[7:])) and not (token and valid_jwt(token)):
            await websocket.close(code=1008)
            return
        await echo(websocket)

    app = Starlette(routes=[
        Route("/api/auth/login", login, methods=["POST"]),
        Route("/health", health),
        WebSocketRoute("/realtime", echo),
        WebSocketRoute("/private", private),
    ])

    async def upgrades_one_path(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and scope["path"] not in ("/realtime", "/private"):
            await asyncio.Event().wait()  # never accepts, never refuses: the client waits for its timeout
            return
        await app(scope, receive, send)

    return upgrades_one_path


@dataclass
class SocketIoState:
    """The Socket.io server's rule: a token in the CONNECT's auth (or a bearer header) when `token_required`."""

    token_required: bool = False


def socketio_app(state: SocketIoState, ping_interval: float = 1.0, ping_timeout: float = 1.0,
                 other: Any = None) -> Any:
    """python-socketio on /socket.io/ beside an HTTP app: `other`, else a small one (`/health`; `/block` blocks
    the event loop for the seconds in its query, as a synchronous call in an async handler does)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    sio = socketio.AsyncServer(async_mode="asgi", ping_interval=ping_interval, ping_timeout=ping_timeout)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        if not state.token_required:
            return
        header = environ.get("HTTP_AUTHORIZATION", "")
        token = auth.get("token", "") if isinstance(auth, dict) else ""
        if not (token and valid_jwt(token)) and not (header.startswith("Bearer ") and valid_jwt(header[7:])):
            raise socketio.exceptions.ConnectionRefusedError("authentication failed")

    def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def block(request: Request) -> Response:
        time.sleep(float(request.query_params.get("seconds", "1")))
        return JSONResponse({"blocked": True})

    async def blocking(request: Request) -> Response:
        return block(request)  # a sync call inside an async handler: the whole event loop stops

    http = Starlette(routes=[Route("/health", health), Route("/block", blocking)])
    return socketio.ASGIApp(sio, other_asgi_app=other or http, socketio_path="socket.io")


@contextmanager
def closing_upgrade_server() -> Iterator[int]:
    """A port whose server closes every WebSocket upgrade without answering and answers other GETs with 404."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    port = int(listener.getsockname()[1])
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            if b"upgrade: websocket" in request.lower():
                time.sleep(0.2)
                return
            body = b"Not Found"
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n"
                         b"Connection: close\r\n\r\n" + body)

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=run, name=f"closing-upgrade-{port}", daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
