"""Real servers for the edge tests, on 127.0.0.1: an API (FastAPI-like and Node-like routes) whose faults
are toggled per test, a static frontend, WebSocket servers, SMTP relays, and an https server.

Each server runs in a thread of the test process and is stopped through its own handle.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

# Imported once, here: pytester's in-process runs unload what they import, and cryptography's bindings
# do not survive a second import.
import trustme
from realservices import free_port, wait_for

SMOKE_USER = "smoke@example.com"
SMOKE_PASSWORD = "PLANTED-pw-2b8f"
SMTP_USER = "mailer"
SMTP_PASSWORD = "PLANTED-smtp-pw-7c1d"
JWT_KEY = b"test-signing-key"
FRONTEND_ORIGIN = "http://localhost:5173"
WS_GAUGE = 12

INDEX_HTML = """<!doctype html>
<html><head><title>App</title>
<script type="module" src="/assets/app.js"></script>
<link rel="stylesheet" href="/assets/app.css">
</head><body><div id="root"></div></body></html>
"""


def make_jwt(subject: str, ttl_seconds: float) -> str:
    """An HS256 JWT for `subject`, expiring `ttl_seconds` from now."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = part(json.dumps({"sub": subject, "exp": int(time.time() + ttl_seconds)}).encode())
    signature = hmac.new(JWT_KEY, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{part(signature)}"


def valid_jwt(token: str) -> bool:
    try:
        header, payload, signature = token.split(".")
    except ValueError:
        return False
    expected = base64.urlsafe_b64encode(
        hmac.new(JWT_KEY, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    ).rstrip(b"=").decode()
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return hmac.compare_digest(expected, signature) and claims["exp"] > time.time()


@dataclass
class Faults:
    """The faults the API server shows, read on every request: add to `active` to break it."""

    active: set[str] = field(default_factory=set)
    tokens: list[str] = field(default_factory=list)

    def __contains__(self, name: object) -> bool:
        return name in self.active


def api_app(faults: Faults) -> Any:
    """Both runbook backends in one Starlette app; every route reads `faults` per request."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    def bearer_ok(headers: Any) -> bool:
        value = headers.get("authorization", "")
        return value.startswith("Bearer ") and valid_jwt(value[7:]) and "token_rejected" not in faults

    def fastapi_health(request: Request) -> Response:
        if "health_down" in faults:
            return JSONResponse({"detail": "database unreachable"}, status_code=503)
        return JSONResponse(True)

    def node_health(request: Request) -> Response:
        if "health_down" in faults:
            return JSONResponse({"status": "error"}, status_code=503)
        body: dict[str, Any] = {"status": "degraded" if "health_degraded" in faults else "ok", "checks": {
            "database": {"status": "down" if "health_degraded" in faults else "up"},
        }}
        if "no_memory" not in faults:
            used = 95_000_000 if "memory_high" in faults else 40_000_000
            body["checks"]["memory"] = {"status": "ok", "heapUsed": used, "heapTotal": 100_000_000}
        return JSONResponse(body)

    def metrics(request: Request) -> Response:
        value = 5000 if "ws_leak" in faults else WS_GAUGE
        return PlainTextResponse(
            "# HELP websocket_connections Open WebSocket connections\n"
            "# TYPE websocket_connections gauge\n"
            f"websocket_connections {value}\n"
            "http_requests_total 42\n",
            media_type="text/plain; version=0.0.4",
        )

    async def items(request: Request) -> Response:
        if "server_errors" in faults:
            return PlainTextResponse("Internal Server Error", status_code=500)
        if "slow" in faults:
            await asyncio.sleep(1.2)
        if not bearer_ok(request.headers):
            return JSONResponse({"detail": "Not authenticated"}, status_code=401)
        return JSONResponse({"data": [], "count": 0})

    async def login(request: Request) -> Response:
        if "login_broken" in faults:
            return PlainTextResponse("Internal Server Error", status_code=500)
        if request.url.path.endswith("access-token"):
            form = parse_qs((await request.body()).decode())
            username, password = form.get("username", [""])[0], form.get("password", [""])[0]
        else:
            data = await request.json()
            username, password = data.get("username"), data.get("password")
        if username != SMOKE_USER or (password != SMOKE_PASSWORD and "login_any_password" not in faults):
            return JSONResponse({"detail": "Incorrect email or password"}, status_code=400)
        ttl = -600.0 if "token_expired" in faults else 90 * 86400.0 if "token_long" in faults else 3600.0
        token = make_jwt(SMOKE_USER, ttl)
        faults.tokens.append(token)
        field_name = "access_token" if request.url.path.endswith("access-token") else "token"
        return JSONResponse({field_name: token, "token_type": "bearer"})

    def me(request: Request) -> Response:
        if "anonymous_allowed" in faults or bearer_ok(request.headers):
            return JSONResponse({"email": SMOKE_USER})
        return JSONResponse({"detail": "Not authenticated"}, status_code=401)

    async def realtime(websocket: WebSocket) -> None:
        if not bearer_ok(websocket.headers):
            await websocket.close(code=1008)
            return
        await websocket.accept()
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except Exception:  # noqa: BLE001 - the client went away
            return

    app = Starlette(routes=[
        Route("/api/v1/utils/health-check/", fastapi_health),
        Route("/health", node_health),
        Route("/metrics", metrics),
        Route("/api/v1/items/", items),
        Route("/api/suites", items),
        Route("/api/v1/login/access-token", login, methods=["POST"]),
        Route("/api/auth/login", login, methods=["POST"]),
        Route("/api/v1/users/me", me),
        Route("/api/auth/me", me),
        WebSocketRoute("/realtime", realtime),
    ])

    async def with_cors(scope: Any, receive: Any, send: Any) -> None:
        """Answer CORS preflights for FRONTEND_ORIGIN (unless the no_cors fault is on)."""
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            origin = headers.get("origin")
            if origin == FRONTEND_ORIGIN and "no_cors" not in faults:
                response: Response = PlainTextResponse("OK", headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                    "Access-Control-Allow-Headers": "authorization, content-type",
                    "Access-Control-Allow-Credentials": "true",
                })
            else:
                response = PlainTextResponse("Disallowed CORS origin", status_code=400)
            await response(scope, receive, send)
            return
        await app(scope, receive, send)

    return with_cors


@dataclass
class Frontend:
    """A static frontend: `spa_fallback` serves index.html for unknown paths; `missing` files 404."""

    spa_fallback: bool = True
    missing: set[str] = field(default_factory=set)
    broken: bool = False


def static_app(state: Frontend) -> Any:
    """An ASGI app serving index.html and its assets, as nginx would with or without `try_files`."""
    from starlette.responses import HTMLResponse, PlainTextResponse, Response

    files = {
        "/": (INDEX_HTML, "text/html"),
        "/index.html": (INDEX_HTML, "text/html"),
        "/assets/app.js": ("console.log('app')", "text/javascript"),
        "/assets/app.css": ("body { margin: 0 }", "text/css"),
    }

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        response: Response
        if state.broken:
            response = HTMLResponse("<html><body>502 Bad Gateway</body></html>", status_code=502)
        elif path in files and path not in state.missing:
            body, kind = files[path]
            response = Response(body, media_type=kind)
        elif state.spa_fallback:
            response = HTMLResponse(INDEX_HTML)
        else:
            response = HTMLResponse("<html><head><title>404 Not Found</title></head><body>nginx</body></html>",
                                    status_code=404)
        if path == "/old":
            response = PlainTextResponse("", status_code=302, headers={"Location": "http://example.invalid/"})
        await response(scope, receive, send)

    return app


class Uvicorn:
    """A uvicorn server in a thread of this process, on its own free port."""

    def __init__(self, app: Any, certfile: Path | None = None, keyfile: Path | None = None) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="critical", ws="websockets-sansio",
            lifespan="off", timeout_graceful_shutdown=1, ssl_certfile=str(certfile) if certfile else None,
            ssl_keyfile=str(keyfile) if keyfile else None,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)
        scheme = "https" if certfile else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> Uvicorn:
        self.thread.start()
        wait_for(lambda: self.server.started, 10, f"uvicorn on port {self.port}")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def serving(app: Any, certfile: Path | None = None, keyfile: Path | None = None) -> Iterator[Uvicorn]:
    server = Uvicorn(app, certfile, keyfile).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def websocket_server() -> Iterator[str]:
    """A `websockets` echo server (answers pings as any server does); yields its ws:// URL."""
    from websockets.sync.server import ServerConnection, serve

    def echo(connection: ServerConnection) -> None:
        for message in connection:
            connection.send(message)

    port = free_port()
    server = serve(echo, "127.0.0.1", port)
    thread = threading.Thread(target=server.serve_forever, name=f"websockets-{port}", daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{port}/realtime"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@contextmanager
def raw_http_server(mode: str) -> Iterator[int]:
    """A server that answers a WebSocket handshake badly, by `mode`:
    "404", "426", "200" (a proxy that dropped Upgrade), or "mute" (upgrades, then never answers a frame)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    port = int(listener.getsockname()[1])
    stop = threading.Event()
    connections: list[socket.socket] = []

    def answer(conn: socket.socket) -> None:
        conn.settimeout(5)
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        if mode == "mute":
            key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:"))
            accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            return  # keeps the socket open, reads nothing more: no pong, ever
        reason = {"404": "Not Found", "426": "Upgrade Required", "200": "OK"}[mode]
        body = b"<html>not a websocket</html>"
        conn.sendall(f"HTTP/1.1 {mode} {reason}\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n"
                     "Connection: close\r\n\r\n".encode() + body)

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            connections.append(conn)
            answer(conn)

    thread = threading.Thread(target=run, name=f"raw-http-{port}", daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in connections:
            conn.close()
        listener.close()


@contextmanager
def blackhole() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


@dataclass
class Certificates:
    """A private CA and a leaf certificate for 127.0.0.1/localhost, as files."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    server_context: Any


def make_certificates(folder: Path, days: float = 365.0) -> Certificates:
    """A trustme CA (ca.pem) and a leaf valid for `days` more days (server.pem, server.key)."""
    import datetime
    import ssl

    ca = trustme.CA()
    now = datetime.datetime.now(datetime.UTC)
    leaf = ca.issue_cert("127.0.0.1", "localhost", not_before=now - datetime.timedelta(days=1),
                         not_after=now + datetime.timedelta(days=days))
    folder.mkdir(parents=True, exist_ok=True)
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert_file, key_file = folder / "server.pem", folder / "server.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in leaf.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_file), append=True)
    leaf.private_key_pem.write_to_path(str(key_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return Certificates(ca_file, cert_file, key_file, context)


@contextmanager
def smtp_server(tls_context: Any = None, auth: bool = False, implicit_tls: bool = False) -> Iterator[int]:
    """An aiosmtpd relay: STARTTLS when given a context, AUTH (SMTP_USER/SMTP_PASSWORD) when `auth`."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "550 this relay accepts no mail"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == SMTP_USER.encode() and \
            data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok, handled=False)

    port = free_port()
    options: dict[str, Any] = {}
    if auth:
        options.update(authenticator=authenticator, auth_require_tls=False)
    if tls_context is not None and not implicit_tls:
        options.update(tls_context=tls_context)
    controller = Controller(
        Sink(), hostname="127.0.0.1", port=port, ready_timeout=10,
        ssl_context=tls_context if implicit_tls else None, **options,
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
