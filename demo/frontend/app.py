"""The demo frontend: a single-page app shell and its assets, with the SPA fallback to index.html for deep links
such as /login and /settings (DEMO_FAULT=deeplinks-404 switches the fallback off, as a misconfigured web server
would). Run with `python -m uvicorn demo.frontend.app:app` from the repository's root.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

HERE = Path(__file__).parent
FALLBACK = os.environ.get("DEMO_FAULT", "none") != "deeplinks-404"


async def shell(request: Request) -> Response:
    path = request.url.path
    if path in ("/", "/index.html") or (FALLBACK and "." not in path.rsplit("/", 1)[-1]):
        return FileResponse(HERE / "index.html", headers={"Cache-Control": "no-cache"})
    return PlainTextResponse("404 Not Found", status_code=404)


app = Starlette(
    routes=[Mount("/assets", StaticFiles(directory=HERE / "assets"), name="assets"), Route("/{path:path}", shell)],
)
