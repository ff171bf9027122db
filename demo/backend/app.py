"""The demo backend: health, metrics, a JSON login, a protected path, items from PostgreSQL, a WebSocket.

Run with `python -m uvicorn demo.backend.app:app` from the repository's root. Configured by the environment:
DATABASE_URL, JWT_SECRET, DEMO_USER, DEMO_PASSWORD, DEMO_FRONTEND_ORIGIN and DEMO_FAULT (crash-loop: it dies at start;
broken-login: the login answers 500; ws-refused: /realtime is not a WebSocket route, so the upgrade is refused).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import resource
import time

import psycopg
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

FAULT = os.environ.get("DEMO_FAULT", "none")
SECRET = os.environ.get("JWT_SECRET", "")
if FAULT == "crash-loop":
    # A bad deploy: the app dies while starting, every time its supervisor starts it again.
    raise RuntimeError("backend cannot start: REDIS_URL is not set (demo fault crash-loop)")
TOKEN_SECONDS = 3600
OPEN_SOCKETS = 0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(message: str) -> str:
    return _b64(hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).digest())


def make_token(subject: str) -> str:
    """A JWT (HS256, signed with JWT_SECRET) valid for one hour."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    now = int(time.time())
    claims = {"sub": subject, "iat": now, "exp": now + TOKEN_SECONDS}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{head}.{body}.{_sign(f'{head}.{body}')}"


def token_subject(token: str) -> str | None:
    """The subject of a valid, unexpired HS256 token, else None."""
    try:
        head, body, signature = token.split(".")
        if json.loads(_unb64(head)).get("alg") != "HS256":
            return None
        if not hmac.compare_digest(signature, _sign(f"{head}.{body}")):
            return None
        claims = json.loads(_unb64(body))
        if float(claims["exp"]) <= time.time():
            return None
        return str(claims["sub"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def memory_percent() -> float:
    """This process's resident memory as a percentage of the machine's."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        with open("/proc/self/statm") as statm:
            rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return round(100 * rss / total, 3)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "checks": {"memory": {"percent": memory_percent()}}})


async def metrics(request: Request) -> PlainTextResponse:
    text = (
        "# HELP websocket_connections Open WebSocket connections.\n"
        "# TYPE websocket_connections gauge\n"
        f"websocket_connections {OPEN_SOCKETS}\n"
    )
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


async def login(request: Request) -> JSONResponse:
    if FAULT == "broken-login":
        print("ERROR login: token service misconfigured (demo fault broken-login)", flush=True)
        return JSONResponse({"detail": "Internal Server Error"}, status_code=500)
    try:
        data = await request.json()
    except ValueError:
        return JSONResponse({"detail": "expected a JSON body"}, status_code=422)
    if not isinstance(data, dict) or not isinstance(data.get("username"), str):
        return JSONResponse({"detail": "expected username and password"}, status_code=422)
    user_ok = hmac.compare_digest(data["username"].encode(), os.environ.get("DEMO_USER", "").encode())
    password_ok = hmac.compare_digest(str(data.get("password")).encode(), os.environ.get("DEMO_PASSWORD", "").encode())
    if not (user_ok and password_ok and SECRET):
        return JSONResponse({"detail": "Incorrect username or password"}, status_code=401)
    return JSONResponse({"access_token": make_token(data["username"]), "token_type": "bearer"})


async def me(request: Request) -> JSONResponse:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    subject = token_subject(token) if scheme.lower() == "bearer" else None
    if subject is None:
        return JSONResponse({"detail": "Not authenticated"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
    return JSONResponse({"username": subject})


async def items(request: Request) -> JSONResponse:
    try:
        async with await psycopg.AsyncConnection.connect(os.environ["DATABASE_URL"], connect_timeout=2) as conn:
            cursor = await conn.execute("SELECT id, name FROM items ORDER BY id")
            rows = await cursor.fetchall()
    except psycopg.Error as exc:
        print(f"ERROR items: database error: {type(exc).__name__}", flush=True)
        return JSONResponse({"detail": "database error"}, status_code=500)
    return JSONResponse([{"id": i, "name": n} for i, n in rows])


async def realtime(websocket: WebSocket) -> None:
    """Ping/pong: a text "ping" is answered "pong", anything else is echoed."""
    global OPEN_SOCKETS
    await websocket.accept()
    OPEN_SOCKETS += 1
    try:
        while True:
            message = await websocket.receive_text()
            await websocket.send_text("pong" if message == "ping" else message)
    except WebSocketDisconnect:
        pass
    finally:
        OPEN_SOCKETS -= 1


routes: list[BaseRoute] = [
    Route("/health", health),
    Route("/metrics", metrics),
    Route("/api/auth/login", login, methods=["POST"]),
    Route("/api/me", me),
    Route("/api/items", items),
]
if FAULT != "ws-refused":
    routes.append(WebSocketRoute("/realtime", realtime))

app = Starlette(
    routes=routes,
    middleware=[
        Middleware(
            CORSMiddleware,
            allow_origins=[o for o in [os.environ.get("DEMO_FRONTEND_ORIGIN")] if o],
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type"],
        )
    ],
)
