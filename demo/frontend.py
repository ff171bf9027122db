"""The demo frontend: a single-page app shell, with SPA fallback unless DEMO_FAULT=deeplinks-404."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

ROOT = Path(__file__).parent / "frontend"
FALLBACK = os.environ.get("DEMO_FAULT", "none") != "deeplinks-404"


async def shell(request: Request) -> Response:
    if request.url.path == "/" or FALLBACK:
        return FileResponse(ROOT / "index.html")
    return PlainTextResponse("404 Not Found", status_code=404)


app = Starlette(
    routes=[Mount("/assets", StaticFiles(directory=ROOT / "assets")), Route("/{path:path}", shell)],
)
