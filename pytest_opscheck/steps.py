"""Resolution steps with the user's values: a check's resolution names `{placeholders}` (`{compose}`,
`{backend}`, `{health_url}`, `{prisma}`, ...) that are rendered once, at collection, from the settings, so
every printed command can be pasted as it is (the configured URLs and paths, the Compose project and
service names, the migration folder) instead of the runbook's example hosts.

Only the names of `PLACEHOLDERS` are replaced: any other brace (`{{json .State}}`, `%{time_total}`, a
shell `${VAR}`) is left as written. A runbook section linked to a check is the team's own text and is
never rendered.

The steps fit how the stack runs (`deployment`): a Compose project keeps its `{compose}` commands (a Swarm stack
has them translated first, `swarm_steps.py`); a stack that runs otherwise (plain processes, systemd, a platform)
gets each Compose or Docker command turned into what to look at there, with no Docker command left. A line that
names the migration tool the app does not use (Alembic for a Prisma app, Prisma for an Alembic one) is dropped.
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
    "api_url": "backend_url + the first of api_paths",
    "as_user": "the curl option that presents the smoke account's credential (auth.scheme, token_header, session)",
    "migrations_status": "the migration tool's status command (alembic current, prisma migrate status)",
    "stats": "where to see the processes' memory and CPU: docker stats, or top on the host",
    "frontend_route": "the first deep link of frontend_routes",
    "db_host": "the host of database_url",
}
# Not placeholders: how the stack runs, for `render` ("compose", "swarm", "other"), and whether the database is
# a service of the stack ("" when it is, "1" when it is managed elsewhere).
DEPLOYMENT = "deployment"
MANAGED_DB = "managed_db"
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def render(text: str, values: dict[str, str]) -> str:
    """`text` fitted to the deployment and the migration tool, with each known placeholder replaced by its value
    (values may hold placeholders themselves)."""
    for _ in range(3):  # fragments name other placeholders: at most two levels deep
        text = fit(text, values)
        rendered = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
        if rendered == text:
            break
        text = rendered
    return fit(text, values)


def deployment(settings: Settings) -> str:
    """How the stack runs: "swarm", "compose", or "other" (plain processes, systemd, a platform)."""
    if settings.swarm_stack:
        return "swarm"
    if settings.compose_project or settings.compose_file:
        return "compose"
    return "other"


def values(settings: Settings) -> dict[str, str]:
    """Every placeholder's value for `settings`."""
    backend_url = (settings.backend_url or "").rstrip("/") or "the backend's URL"
    auth = settings.auth
    same_origin = frontend_served_by_backend(settings)
    user, dbname = _database_user(settings.database_url)
    memory = settings.health_memory_path.strip(".")
    how = deployment(settings)
    api = settings.api_entries()
    routes = [r for r in settings.frontend_routes if r not in ("", "/")]
    tool = settings.migrations.tool if settings.migrations is not None else None
    db_host = _database_host(settings.database_url)
    # A database that is not one of the stack's services (a managed one, another machine): no container to exec in.
    managed = bool(db_host) and db_host not in ("localhost", "127.0.0.1", "::1", settings.db_service)
    found = {
        DEPLOYMENT: how,
        MANAGED_DB: "1" if managed else "",
        "migrations_tool": tool or "",
        "api_url": backend_url + _path(api[0].path) if api else backend_url,
        "as_user": _as_user(auth),
        "migrations_status": {"alembic": "{alembic} current", "prisma": "{prisma} migrate status"}.get(
            tool or "", "the migration tool's status (alembic current, or prisma migrate status)"),
        "stats": "docker stats --no-stream" if how != "other" else "top -b -n 1 | head -20   (on the backend's host)",
        "frontend_route": routes[0] if routes else "/some/route",
        "compose": compose_command(settings),
        "backend": settings.backend_service,
        "db": settings.db_service,
        "frontend": frontend_service(settings),
        "backend_url": backend_url,
        "health_url": backend_url + _path(settings.health_path),
        "metrics_url": backend_url + _path(settings.metrics_path or "/metrics"),
        "login_url": _on(backend_url, auth.login_path if auth and auth.login_path else "/"),
        "probe_url": _on(backend_url, auth.probe_path if auth and auth.probe_path else "/"),
        "login_curl": _login_curl(getattr(auth, "style", "json")),
        "frontend_url": (settings.frontend_url or "").rstrip("/") or "the frontend's URL",
        "websocket_url": settings.websocket_url or "the WebSocket's URL",
        "memory_jq": "." + memory if memory else ".",
        "psql": f"{{compose}} exec {{db}} psql -U {user} -d {dbname}" if how != "other" and not managed
                else _psql(settings),
        "db_host": db_host,
        "env_file": _shown_path(settings, settings.env_file or ".env"),
        "compose_file": _shown_path(settings, settings.compose_file) if settings.compose_file else "compose.yml",
        "alembic": "{compose} exec {backend} alembic",
        "prisma": prisma_command(settings),
    }
    found.update(_BY_THE_BACKEND if same_origin else _BY_ITS_OWN_SERVER)
    if how == "swarm" and settings.swarm_stack:  # the fragments' own Compose commands, in Swarm terms too
        from .swarm_steps import swarm_terms

        found = {k: swarm_terms(v, settings.swarm_stack) if "{compose}" in v else v for k, v in found.items()}
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


def _on(base: str, path: str) -> str:
    return path if urlsplit(path).scheme else base + _path(path)


def _as_user(auth: object) -> str:
    """The curl option presenting the smoke account's credential, its value a shell variable to fill in."""
    if auth is None:
        return ""
    if getattr(auth, "session", None) == "cookie":
        return '-b "$SESSION_COOKIE"   (the session cookie the login set, NAME=VALUE)'
    header = getattr(auth, "token_header", None)
    if header:
        return f'-H "{header}: $TOKEN"'
    return f'-H "Authorization: {getattr(auth, "scheme", "Bearer")} $TOKEN"'


def _psql(settings: Settings) -> str:
    """psql on database_url's host, as its user, on its database (never the password)."""
    if not settings.database_url or "://" not in settings.database_url:
        return "psql"
    parts = urlsplit(settings.database_url)
    user, dbname = _database_user(settings.database_url)
    try:
        port = parts.port or 5432
    except ValueError:
        port = 5432
    return f"psql -h {parts.hostname or 'localhost'} -p {port} -U {user} -d {dbname}"


# A Compose command: the verb, the service, and the rest of the command up to the end of its line.
_COMPOSE = re.compile(r"\{compose\} (ps|logs|up|start|restart|stop|exec|config|down|build|pull)"
                      r"((?:(?!\{compose\})[^\n])*)")
_DOCKER_LINE = re.compile(r"\bdocker\b|\{compose\}")
_TOOLS = {"alembic": re.compile(r"alembic", re.IGNORECASE), "prisma": re.compile(r"prisma", re.IGNORECASE)}


def fit(text: str, values: dict[str, str]) -> str:
    """`text` fitted to how the stack runs and to its migration tool (see the module's docstring)."""
    tool = values.get("migrations_tool", "")
    if tool:
        other = _TOOLS["prisma" if tool == "alembic" else "alembic"]
        text = "\n".join(line for line in text.split("\n") if not other.search(line))
    if values.get(MANAGED_DB):
        text = _COMPOSE.sub(lambda m: _managed(m.group(1), m.group(2)) if _service_of(m.group(2)) == "{db}"
                            else m.group(0), text)
    if values.get(DEPLOYMENT) != "other":
        return text
    translated = _COMPOSE.sub(lambda m: _plain(m.group(1), m.group(2)), text)
    if translated != text and PLAIN_NOTE not in translated:
        translated += "\n" + PLAIN_NOTE
    # Whatever Docker command is left (docker stats, docker inspect, a Compose command in prose) does not apply.
    return "\n".join(line for line in translated.split("\n") if not _DOCKER_LINE.search(line))


PLAIN_NOTE = ("(The stack runs without containers here: systemctl and journalctl stand for however the service runs, "
              "its platform's status, logs and restart.)")


def _service_of(rest: str) -> str:
    """The service a Compose command's arguments name: the first word that is not an option."""
    word = next((w for w in rest.split() if not w.startswith("-")), "")
    return word.rstrip(");,")


def _managed(verb: str, rest: str) -> str:
    """A Compose command on the database's service when the database is managed elsewhere: where to look instead."""
    cut = re.search(r"\s{2,}|\s(?:&&|\|\||\||;|#|\()|\)", rest)
    tail = rest[cut.start():] if cut else ""
    what = {"ps": "its status", "logs": "its logs", "restart": "a restart", "up": "a restart", "start": "a restart",
            "stop": "a stop", "exec": "a session"}.get(verb, "it")
    return f"{what} in the managed database's console ({{db_host}}){tail}"


def _plain(verb: str, rest: str) -> str:
    """One Compose command as what to do where the service runs as a process of its own."""
    cut = re.search(r"\s{2,}|\s(?:&&|\|\||\||;|#|\()|\)", rest)
    args, tail = (rest[: cut.start()], rest[cut.start():]) if cut else (rest, "")
    words = [w for w in args.split() if not w.startswith("-")]
    service = words[0] if words else "the service"
    lines = re.search(r"--tail[= ](\d+)", args)
    if verb == "exec":
        inside = rest.strip().partition(" ")[2]
        return f"{inside}   (where {service} runs)" if inside else f"a shell where {service} runs"
    if verb == "logs":
        return f"journalctl -u {service}{f' -n {lines.group(1)}' if lines else ''}{tail}"
    if verb == "ps":
        return f"systemctl status {service}{tail}"
    if verb in ("up", "start", "restart"):
        return f"systemctl restart {service}{tail}"
    if verb == "stop":
        return f"systemctl stop {service}{tail}"
    if verb in ("build", "pull"):
        return f"rebuild and redeploy {service}{tail}"
    return f"the configuration {service} runs with{tail}"


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


def _database_host(url: str | None) -> str:
    """The host of database_url, lower-case ("" when unset)."""
    if not url or "://" not in url:
        return ""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _database_user(url: str | None) -> tuple[str, str]:
    """The user and the database of `database_url` (never the password); postgres/postgres when unset."""
    if not url or "://" not in url:
        return "postgres", "postgres"
    parts = urlsplit(url)
    user = unquote(parts.username or "") or "postgres"
    return user, unquote(parts.path.lstrip("/")) or user
