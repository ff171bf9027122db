"""Resolution steps with the user's values: a check's resolution names `{placeholders}` (`{compose}`,
`{backend}`, `{health_url}`, `{prisma}`, ...) that are rendered once, at collection, from the settings, so
every printed command can be pasted as it is (the configured URLs and paths, the Compose project and
service names, the migration folder) instead of the runbook's example hosts.

Only the names of `PLACEHOLDERS` are replaced: any other brace (`{{json .State}}`, `%{time_total}`, a
shell `${VAR}`) is left as written. A runbook section linked to a check is the team's own text and is
never rendered.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .config import Settings

# What each placeholder stands for (the README and CONTRIBUTING list them from here).
PLACEHOLDERS = {
    "compose": "the Compose command of the project: docker compose -p NAME, or -f FILE",
    "backend": "the backend's Compose service (backend_service)",
    "db": "the database's Compose service (db_service)",
    "frontend": "the frontend's Compose service: the backend's when the backend serves the frontend",
    "backend_url": "backend_url",
    "health_url": "backend_url + health_path",
    "metrics_url": "backend_url + metrics_path",
    "login_url": "backend_url + auth.login_path",
    "probe_url": "backend_url + auth.probe_path",
    "login_curl": "the smoke login by hand with curl, in the configured auth.style",
    "frontend_url": "frontend_url",
    "websocket_url": "websocket_url",
    "memory_jq": "health_memory_path as a jq filter (.checks.memory)",
    "psql": "psql in the database's container, as the user and on the database of database_url",
    "env_file": "the stack's .env file (env_file)",
    "compose_file": "the compose file (compose_file; compose.yml when only compose_project is set)",
    "alembic": "alembic in the backend's container",
    "prisma": "the Prisma CLI where the migrations folder is (cd FOLDER && npx prisma)",
    "frontend_serving": "how the frontend is served: by its own web server, or by the backend",
    "spa_fallback": "where the SPA fallback of deep links is configured, for that way of serving",
    "frontend_rebuild": "the commands that rebuild and restart what serves the frontend",
    "frontend_files": "the command that lists the deployed build's assets",
}
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def render(text: str, values: dict[str, str]) -> str:
    """`text` with each known placeholder replaced by its value (values may hold placeholders themselves)."""
    for _ in range(3):  # fragments name other placeholders: at most two levels deep
        rendered = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
        if rendered == text:
            break
        text = rendered
    return text


def values(settings: Settings) -> dict[str, str]:
    """Every placeholder's value for `settings`."""
    backend_url = (settings.backend_url or "").rstrip("/") or "<backend_url>"
    auth = settings.auth
    same_origin = frontend_served_by_backend(settings)
    user, dbname = _database_user(settings.database_url)
    memory = settings.health_memory_path.strip(".")
    found = {
        "compose": compose_command(settings),
        "backend": settings.backend_service,
        "db": settings.db_service,
        "frontend": frontend_service(settings),
        "backend_url": backend_url,
        "health_url": backend_url + _path(settings.health_path),
        "metrics_url": backend_url + _path(settings.metrics_path or "/metrics"),
        "login_url": backend_url + _path(auth.login_path if auth and auth.login_path else "<auth.login_path>"),
        "probe_url": backend_url + _path(auth.probe_path if auth and auth.probe_path else "<auth.probe_path>"),
        "login_curl": _login_curl(getattr(auth, "style", "json")),
        "frontend_url": (settings.frontend_url or "").rstrip("/") or "<frontend_url>",
        "websocket_url": settings.websocket_url or "<websocket_url>",
        "memory_jq": "." + memory if memory else ".",
        "psql": f"{{compose}} exec {{db}} psql -U {user} -d {dbname}",
        "env_file": _shown_path(settings, settings.env_file or ".env"),
        "compose_file": _shown_path(settings, settings.compose_file) if settings.compose_file else "compose.yml",
        "alembic": "{compose} exec {backend} alembic",
        "prisma": prisma_command(settings),
    }
    found.update(_BY_THE_BACKEND if same_origin else _BY_ITS_OWN_SERVER)
    return found


# How the frontend is served decides where its SPA fallback lives and what rebuilds it.
_BY_ITS_OWN_SERVER = {
    "frontend_serving": "the frontend's web server (service {frontend})",
    "spa_fallback": """the web server has no SPA fallback, so any route but / is looked up as a file.
- nginx: in the location / block:  try_files $uri /index.html;
- Express: connect-history-api-fallback (or a catch-all sending index.html) after the static files
- check the router's base path (TanStack Router / Vite `base`) matches where the app is served
- check the whole build output (dist/) was deployed, index.html included:
  {compose} exec {frontend} ls /usr/share/nginx/html""",
    "frontend_rebuild": "{compose} build --no-cache {frontend} && {compose} up -d {frontend}",
    "frontend_files": "{compose} exec {frontend} ls /usr/share/nginx/html/assets",
}
_BY_THE_BACKEND = {
    "frontend_serving": "the backend (service {backend}), which serves the built frontend on its own origin",
    "spa_fallback": """the backend serves the frontend on its own origin ({frontend_url}), so its fallback must send
index.html for deep links; browsers get it because they ask for text/html, as this check does.
- FastAPI app.frontend("/", directory=...): a 404 here means the frontend build is missing from the image
  (no index.html in that directory) or an API route shadows the path:
  {compose} exec {backend} ls app/frontend
- Express / NestJS: the catch-all that sends index.html (ServeStaticModule, connect-history-api-fallback)
  must come after the API routes and accept text/html
- check the router's base path (TanStack Router / Vite `base`) matches where the app is served""",
    "frontend_rebuild": "{compose} build --no-cache {backend} && {compose} up -d {backend}",
    "frontend_files": "{compose} exec {backend} ls app/frontend/assets",
}


def frontend_served_by_backend(settings: Settings) -> bool:
    """The frontend is on the backend's origin (FastAPI's app.frontend, Express static): no service of its own."""
    if not settings.frontend_url or not settings.backend_url:
        return False
    return _origin(settings.frontend_url) == _origin(settings.backend_url)


def frontend_service(settings: Settings) -> str:
    """The Compose service that serves the frontend: the backend's when it serves it, else `frontend`."""
    return settings.backend_service if frontend_served_by_backend(settings) else "frontend"


def compose_command(settings: Settings) -> str:
    """`docker compose` aimed at the configured project: `-p NAME` and/or `-f FILE` as configured."""
    parts = ["docker compose"]
    if settings.compose_file:
        parts.append(f"-f {_shown_path(settings, settings.compose_file)}")
    if settings.compose_project:
        parts.append(f"-p {settings.compose_project}")
    return " ".join(parts)


def prisma_command(settings: Settings) -> str:
    """The Prisma CLI where the schema lives: the folder above `prisma/` of the migrations folder."""
    migrations = settings.migrations
    folder = migrations.migrations_dir if migrations is not None else "prisma/migrations"
    project = Path(folder).parent.parent  # <project>/prisma/migrations
    shown = _shown_path(settings, str(project))
    return "npx prisma" if shown in (".", "") else f"cd {shown} && npx prisma"


def _shown_path(settings: Settings, relative: str) -> str:
    """A path of the config as a user pastes it: relative to the working folder when below it."""
    path = settings.path(relative)
    try:
        shown = os.path.relpath(path)
    except ValueError:  # another drive
        return str(path)
    return str(path) if shown.startswith("..") else shown


def _login_curl(style: str) -> str:
    if style == "form":
        return "curl -X POST {login_url} -d @smoke-login.form"
    body = "smoke-login.graphql.json" if style == "graphql" else "smoke-login.json"
    return f'curl -X POST {{login_url}} -H "Content-Type: application/json" -d @{body}'


def _path(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    default = 443 if parts.scheme in ("https", "wss") else 80
    try:
        port = parts.port or default
    except ValueError:
        port = default
    return parts.scheme, (parts.hostname or "").lower(), port


def _database_user(url: str | None) -> tuple[str, str]:
    """The user and the database of `database_url` (never the password); postgres/postgres when unset."""
    if not url or "://" not in url:
        return "postgres", "postgres"
    parts = urlsplit(url)
    user = unquote(parts.username or "") or "postgres"
    return user, unquote(parts.path.lstrip("/")) or user
