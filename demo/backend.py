"""The demo backend: health, metrics, a JSON login, a protected path, items from PostgreSQL, a WebSocket.

Configured by the environment: DEMO_DATABASE_URL, DEMO_SECRET, DEMO_USER, DEMO_PASSWORD, DEMO_FAULT.
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
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

FAULT = os.environ.get("DEMO_FAULT", "none")
SECRET = os.environ.get("DEMO_SECRET", "")
OPEN_SOCKETS = 0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def make_token(subject: str) -> str:
    """A HS256 JWT valid for one hour."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps({"sub": subject, "exp": int(time.time()) + 3600}).encode())
    signature = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def token_valid(token: str) -> bool:
    try:
        head, body, signature = token.split(".")
        expected = _b64(hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return hmac.compare_digest(signature, expected) and claims["exp"] > time.time()
    except (ValueError, KeyError):
        return False


async def health(request: Request) -> JSONResponse:
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    total_kib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024
    memory = {"rss_kib": rss_kib, "total_kib": total_kib, "percent": round(100 * rss_kib / total_kib, 2)}
    return JSONResponse({"status": "ok", "checks": {"memory": memory}})


async def metrics(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"# TYPE websocket_connections gauge\nwebsocket_connections {OPEN_SOCKETS}\n")


async def login(request: Request) -> JSONResponse:
    if FAULT == "broken-login":
        return JSONResponse({"detail": "Internal Server Error"}, status_code=500)
    data = await request.json()
    if data.get("username") == os.environ["DEMO_USER"] and data.get("password") == os.environ["DEMO_PASSWORD"]:
        return JSONResponse({"access_token": make_token(data["username"]), "token_type": "bearer"})
    return JSONResponse({"detail": "Incorrect username or password"}, status_code=401)


async def me(request: Request) -> JSONResponse:
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    if not token_valid(token):
        return JSONResponse({"detail": "Not authenticated"}, status_code=401)
    return JSONResponse({"username": os.environ["DEMO_USER"]})


async def items(request: Request) -> JSONResponse:
    try:
        with psycopg.connect(os.environ["DEMO_DATABASE_URL"], connect_timeout=2) as conn:
            rows = conn.execute("SELECT id, name FROM items ORDER BY id").fetchall()
    except psycopg.Error:
        return JSONResponse({"detail": "database error"}, status_code=500)
    return JSONResponse([{"id": i, "name": n} for i, n in rows])


async def realtime(websocket: WebSocket) -> None:
    global OPEN_SOCKETS
    await websocket.accept()
    OPEN_SOCKETS += 1
    try:
        async for message in websocket.iter_text():
            await websocket.send_text(message)
    finally:
        OPEN_SOCKETS -= 1


routes = [
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
            allow_origins=[os.environ.get("DEMO_FRONTEND_ORIGIN", "")],
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type"],
        )
    ],
)
