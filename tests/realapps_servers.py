"""Servers that behave as real applications' frameworks do, for the issue-14 tests (ASGI apps run by uvicorn
through `servers.serving`):

- `fastapi_app`: the FastAPI full-stack template today: its API under /api/v1 and the built frontend served
  by the backend itself on the same origin, as `app.frontend("/", directory=...)` serves it (FastAPI's
  `_FrontendStaticFiles`): a file when one matches, a directory's index.html, 404.html when the build has
  one, else index.html only to a navigation request (Accept names text/html or application/xhtml+xml with
  q > 0), else 404 JSON;
- `express_app`: an Express frontend server: connect-history-api-fallback with
  `htmlAcceptHeaders: ["text/html", "application/xhtml+xml"]` (GET/HEAD, an Accept header that does not
  start with application/json and names one of them, no dot in the last segment: rewritten to /index.html),
  then express.static, then Express's finalhandler 404 ("Cannot GET /path", HTML);
- `health_app`: a backend whose health JSON is whatever the test gives it.
"""

from __future__ import annotations

import email.message
import json
import mimetypes
from pathlib import Path
from typing import Any

INDEX_HTML = """<!doctype html>
<html lang="en"><head><meta charset="UTF-8"><title>Full Stack FastAPI Project</title>
<script type="module" crossorigin src="/assets/index-Cx3.js"></script>
<link rel="stylesheet" crossorigin href="/assets/index-B7q.css">
</head><body><div id="root"></div></body></html>
"""


def write_build(folder: Path, index: bool = True) -> Path:
    """A Vite build output: index.html and its hashed assets."""
    (folder / "assets").mkdir(parents=True, exist_ok=True)
    if index:
        (folder / "index.html").write_text(INDEX_HTML)
    (folder / "assets" / "index-Cx3.js").write_text("console.log('app')")
    (folder / "assets" / "index-B7q.css").write_text("body{margin:0}")
    return folder


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode().lower(): v.decode() for k, v in scope["headers"]}


def _navigation(accept: str) -> bool:
    """FastAPI's `_is_frontend_navigation_request`: text/html or application/xhtml+xml with q != 0."""
    for raw in accept.split(","):
        message = email.message.Message()
        message["content-type"] = raw.strip()
        q = message.get_param("q")
        try:
            quality = float(q) if isinstance(q, str) else 1.0
        except ValueError:
            quality = 1.0
        kind = f"{message.get_content_maintype()}/{message.get_content_subtype()}"
        if kind in ("text/html", "application/xhtml+xml") and quality != 0:
            return True
    return False


def _file(path: Path) -> Any:
    from starlette.responses import Response

    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Response(path.read_bytes(), media_type=kind)


def _lookup(root: Path, url_path: str) -> Path | None:
    candidate = (root / url_path.lstrip("/")).resolve()
    if root.resolve() not in (candidate, *candidate.parents):
        return None
    if candidate.is_file():
        return candidate
    if candidate.is_dir() and (candidate / "index.html").is_file():
        return candidate / "index.html"
    return None


def fastapi_app(build: Path, fallback: bool = True) -> Any:
    """The template's backend: health, a form login stand-in, and the frontend build on the same origin."""
    from starlette.responses import JSONResponse, Response

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        response: Response
        if path == "/api/v1/utils/health-check/":
            response = JSONResponse(True)
        elif path.startswith("/api/"):
            response = JSONResponse({"detail": "Not Found"}, status_code=404)
        elif scope["method"] not in ("GET", "HEAD"):
            response = JSONResponse({"detail": "Method Not Allowed"}, status_code=405)
        elif (found := _lookup(build, path)) is not None:
            response = _file(found)
        elif (build / "404.html").is_file():
            response = Response((build / "404.html").read_bytes(), status_code=404, media_type="text/html")
        elif fallback and (build / "index.html").is_file() and _navigation(_headers(scope).get("accept", "")):
            response = _file(build / "index.html")
        else:
            response = JSONResponse({"detail": "Not Found"}, status_code=404)
        await response(scope, receive, send)

    return app


def express_app(build: Path, history: bool = True) -> Any:
    """An Express server of the build: history fallback (text/html only), static files, finalhandler's 404."""
    from starlette.responses import HTMLResponse, Response

    accepted = ("text/html", "application/xhtml+xml")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        accept = _headers(scope).get("accept")
        if (
            history and scope["method"] in ("GET", "HEAD") and isinstance(accept, str)
            and not accept.startswith("application/json") and any(a in accept for a in accepted)
            and "." not in path.rsplit("/", 1)[-1]
        ):
            path = "/index.html"
        found = _lookup(build, path)
        response: Response
        if found is not None:
            response = _file(found)
        else:
            response = HTMLResponse(
                f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n'
                f"</head>\n<body>\n<pre>Cannot {scope['method']} {scope['path']}</pre>\n</body>\n</html>\n",
                status_code=404,
            )
        await response(scope, receive, send)

    return app


def health_app(body: Any, content_type: str = "application/json", status: int = 200) -> Any:
    """A backend whose /health answers `body` (JSON-encoded unless a string) with `content_type`; the app's
    `answer` dict may be changed between requests (body, content_type, status)."""
    from starlette.responses import Response

    answer = {"body": body, "content_type": content_type, "status": status}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        text = answer["body"] if isinstance(answer["body"], str) else json.dumps(answer["body"])
        await Response(text, status_code=answer["status"], media_type=answer["content_type"])(scope, receive, send)

    app.answer = answer  # type: ignore[attr-defined]
    return app
