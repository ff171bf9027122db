"""A small local target for the benchmark: backend + frontend over HTTP, a WebSocket, an SMTP server.

Run: python bench/app.py HTTP_PORT WS_PORT SMTP_PORT — prints "ready" once every server listens on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INDEX = (
    b'<!doctype html><html><head><link rel="stylesheet" href="/assets/app.css"></head>'
    b'<body><div id="app"></div><script src="/assets/app.js"></script></body></html>'
)
USER, PASSWORD = "bench@example.test", "bench-password-1"


def token() -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256'})}.{part({'sub': USER, 'exp': int(time.time()) + 3600})}.c2ln"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def send(self, status: int, body: bytes, kind: str = "application/json", extra: dict[str, str] | None = None
             ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/health":
            self.send(200, json.dumps({"status": "ok", "checks": {"memory": {"percent": 12.5}}}).encode())
        elif path == "/metrics":
            self.send(200, b"# TYPE websocket_connections gauge\nwebsocket_connections 3\n", "text/plain")
        elif path == "/api/items" or path.startswith("/api/items/"):
            self.send(200, b"[]")
        elif path == "/api/me":
            ok = self.headers.get("Authorization", "").startswith("Bearer ")
            self.send(200 if ok else 401, b"{}")
        elif path.startswith("/assets/"):
            self.send(200, b"/* asset */", "text/css" if path.endswith(".css") else "application/javascript")
        else:
            self.send(200, INDEX, "text/html")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            data = json.loads(body)
        except ValueError:
            data = {}
        if data.get("username") == USER and data.get("password") == PASSWORD:
            self.send(200, json.dumps({"access_token": token()}).encode())
        else:
            self.send(401, b'{"detail": "bad credentials"}')

    def do_OPTIONS(self) -> None:
        origin = self.headers.get("Origin", "*")
        self.send(204, b"", extra={"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Headers": "*",
                                   "Access-Control-Allow-Methods": "GET, POST"})


def main() -> None:
    http_port, ws_port, smtp_port = (int(a) for a in sys.argv[1:4])
    from aiosmtpd.controller import Controller
    from websockets.sync.server import serve

    class Sink:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 OK"

    smtp = Controller(Sink(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    ws = serve(lambda connection: [connection.send(m) for m in connection], "127.0.0.1", ws_port)
    threading.Thread(target=ws.serve_forever, daemon=True).start()
    # A listen backlog like a production server's (uvicorn: 2048; the standard library's default is 5, and a
    # connection beyond it waits a second for its SYN to be sent again).
    ThreadingHTTPServer.request_queue_size = 128
    http = ThreadingHTTPServer(("127.0.0.1", http_port), Handler)
    print("ready", flush=True)
    try:
        http.serve_forever()
    finally:
        smtp.stop()
        ws.shutdown()


if __name__ == "__main__":
    main()
