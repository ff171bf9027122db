"""The one place where configuration is read, validated and turned into a frozen `Settings`.

Sources, in order: ``--opscheck-config PATH``, else ``[tool.opscheck]`` in the rootdir's
``pyproject.toml``, else ``opscheck.toml`` in the rootdir. ``[tool.opscheck.env.NAME]`` (or
``[env.NAME]`` in ``opscheck.toml``) overrides the top level for ``--opscheck-env NAME``.
``${NAME}`` is read from the environment, then from the stack's ``.env``. Every error is a
`ConfigError` whose message is one line naming the key and the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from .edge import check_edge
from .values import (
    ConfigError,
    check_schemes,
    convert,
    interpolate,
    kind,
    merge,
    read_toml,
    refuse_literal_secrets,
    refuse_unset,
    variables,
)

__all__ = ["ConfigError", "Settings", "load_settings", "settings_from_table"]

DEFAULT_TIMEOUT = 5.0
_SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|AUTH", re.IGNORECASE)


@dataclass(frozen=True)
class Thresholds:
    """Limits beyond which a check fails; `thresholds = {...}` overrides any of them."""

    disk_free_percent: float = 10.0
    memory_percent: float = 90.0
    cpu_percent: float = 90.0
    db_connections_percent: float = 80.0
    long_transaction_seconds: float = 60.0
    slow_query_ms: float = 500.0
    ws_connections_max: int = 1000
    health_memory_percent: float = 90.0
    cert_days: int = 14
    # The engine's host: MemAvailable under this share of MemTotal fails host.memory_free.
    host_memory_free_percent: float = 10.0
    # db.missing_indexes: a table of at least this many rows per sequential scan, read mostly (this share of its
    # scans or more) by sequential scans.
    seq_scan_rows: int = 10000
    seq_scan_percent: float = 50.0


@dataclass(frozen=True)
class Migrations:
    """Where the expected schema version comes from."""

    tool: Literal["alembic", "prisma"] = "alembic"
    script_location: str | None = None
    migrations_dir: str = "prisma/migrations"


@dataclass(frozen=True)
class Csrf:
    """Where a cookie-session login's CSRF token comes from (Django: the csrftoken cookie, sent back as X-CSRFToken),
    fetched with a GET of `path` (default: the login path) before the login."""

    cookie: str = "csrftoken"
    header: str = "X-CSRFToken"
    path: str | None = None


@dataclass(frozen=True)
class Auth:
    """The smoke account, how it proves itself to the backend, and the endpoints the auth checks use.

    The credential is a token (`style` form/json/graphql: the login's answer at `token_field`; `static`: `token`)
    sent as `Authorization: <scheme> <token>` or in `token_header`, or a session cookie (`session = "cookie"`)."""

    login_path: str = ""
    # form/json: the two fields posted (or `body`, a table with {username} and {password} in it); graphql: `query`
    # (the login mutation) with the variables named by username_field and password_field; static: no login.
    style: Literal["form", "json", "graphql", "static"] = "form"
    username: str | None = None
    password: str | None = None
    username_field: str = "username"
    password_field: str = "password"
    body: dict[str, Any] | None = None
    query: str | None = None
    probe_path: str | None = None
    token_field: str = "access_token"  # a dotted path into the answer: token, data.login.accessToken
    scheme: str = "Bearer"  # Authorization: <scheme> <token>; Django REST framework's TokenAuthentication: Token
    token_header: str | None = None  # the bare token in this header instead of Authorization
    session: Literal["cookie"] | None = None  # the login's session cookie is the credential
    csrf: Csrf | None = None
    token: str | None = None  # style = "static": a long-lived API token
    # The browser origin of the CORS preflight, and the one other origin the credential may go to (a login on
    # an auth server): login_path and probe_path may be absolute URLs there.
    origin: str | None = None

    def requirement(self, key: str) -> str:
        """The key that stands for `key` (auth.login_path, .username, .password) in this style: a static token
        has no login, so `auth.token` stands for all three."""
        if self.style == "static" and key in ("auth.login_path", "auth.username", "auth.password"):
            return "auth.token"
        return key


@dataclass(frozen=True)
class ApiPath:
    """One `api_paths` entry: a path asked as the logged-in user, unless `auth = false` (a public path)."""

    path: str
    auth: bool = True


@dataclass(frozen=True)
class Smtp:
    """The mail relay; the smtp checks connect, greet and authenticate, never send."""

    host: str | None = None
    port: int = 587
    starttls: bool = False
    ssl: bool = False
    user: str | None = None
    password: str | None = None
    sender: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything a sweep needs, validated before the first connection."""

    compose_project: str | None = None
    compose_file: str | None = None
    # A Docker Swarm stack (the name given to `docker stack deploy`) instead of a Compose project.
    swarm_stack: str | None = None
    env_file: str | None = None
    backend_url: str | None = None
    health_path: str = "/health"  # "": the backend has no health endpoint (its root answering below 500 is)
    metrics_path: str | None = None
    frontend_url: str | None = None
    frontend_routes: list[str] = field(default_factory=list)
    # Each a path (asked as the logged-in user when [auth] is configured) or { path = ..., auth = false }.
    api_paths: list[ApiPath | str] = field(default_factory=list)
    slow_seconds: float = 2.0
    database_url: str | None = None
    websocket_url: str | None = None
    # What runs on the WebSocket, and how it gets the login's token (none: the ws checks need no login).
    websocket_protocol: Literal["plain", "socket.io", "graphql-transport-ws", "graphql-ws"] = "plain"
    websocket_token: Literal["none", "header", "query"] = "none"
    migrations: Migrations | None = None
    required_env: dict[str, list[str]] = field(default_factory=dict)
    auth: Auth | None = None
    smtp: Smtp | None = None
    runbook: str | None = None
    checks: list[str] = field(default_factory=list)
    # Check id patterns (fnmatch) not run, listed once as disabled: ["email.*", "stack.cpu"].
    disable: list[str] = field(default_factory=list)
    # A team's own keys, read by its checks and targets as `opscheck_config.extra` ([tool.opscheck.extra]).
    extra: dict[str, Any] = field(default_factory=dict)
    thresholds: Thresholds = field(default_factory=Thresholds)
    log_patterns: list[str] = field(
        default_factory=lambda: [
            r"Traceback \(most recent call last\)",
            r"\bFATAL\b",
            r"\bpanic\b",
            r"could not connect",
            r"\bOOM\b",
            r"Out of memory",
        ]
    )
    backend_service: str = "backend"
    db_service: str = "db"
    # host:port of the database as the backend container sees it; default: db_service and the URL's port.
    stack_db_address: str | None = None
    # Where the health JSON keeps its memory figures (a dotted path), and the metrics gauge of open sockets.
    health_memory_path: str = "checks.memory"
    ws_connections_metric: str = "websocket_connections"
    # A CA bundle to trust for https/wss/SMTP TLS targets (a private CA); default: the system's.
    ca_file: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    # Filled by the loader, not by the file.
    source: str | None = None
    env_name: str | None = None
    base_dir: str = "."
    unresolved: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()

    def missing(self, key: str) -> str | None:
        """The skip reason when `key` (dotted) is not configured, else None."""
        if self.auth is not None:
            key = self.auth.requirement(key)
        if key in self.unresolved:
            return f"not configured: {key} (${{{self.unresolved[key]}}} is not set)"
        value: Any = self
        for part in key.split("."):
            value = getattr(value, part, None) if value is not None else None
        if value in (None, "", [], {}):
            return f"not configured: {key}"
        return None

    def unset(self, key: str) -> str | None:
        """The variable behind `key` (dotted) when the key is unconfigured because a ``${VAR}`` in its value is
        unset (or empty), else None: the key itself, a value inside it (`smtp` for `smtp.host`), or the table
        it is in."""
        if key in self.unresolved:
            return self.unresolved[key]
        for name in sorted(self.unresolved):
            if name.startswith(key + ".") or key.startswith(name + "."):
                return self.unresolved[name]
        return None

    def api_entries(self) -> list[ApiPath]:
        """`api_paths` as entries, a plain string being a path asked as the logged-in user."""
        return [ApiPath(p) if isinstance(p, str) else p for p in self.api_paths]

    def path(self, relative: str) -> Path:
        """A path of the config resolved against the config file's folder."""
        return (Path(self.base_dir) / relative).resolve()




def _without(secrets: set[str], message: str) -> str:
    """A refusal of the config with every secret that ``${NAME}`` filled in masked, as our messages can echo it
    (raw, percent-encoded as in a URL's userinfo, repr- or JSON-escaped); its own examples (``token =
    "${API_TOKEN}"``, ``scheme://user:${PASSWORD}@host``) kept whole: they are the help, placeholders that a
    sweep's redaction of secret shapes would mask."""
    import json
    from urllib.parse import quote, quote_plus

    found = set()
    for value in secrets:
        found |= {value, quote(value, safe=""), quote_plus(value), repr(value)[1:-1], json.dumps(value)[1:-1]}
    for form in sorted((f for f in found if len(f) >= 4), key=len, reverse=True):
        message = message.replace(form, "***")
    return message


# The keys a config table may have (and `env`, its named environments).
_CONFIG_KEYS = {f.name for f in fields(Settings)} | {"env"}


def config_upward(start: Path) -> Path | None:
    """The config of the folder the user runs in: the first of `start` and the folders above it holding
    ``[tool.opscheck]`` in pyproject.toml or an opscheck.toml; None when none does."""
    for folder in (start, *start.parents):
        found = find_config_file(folder, None)
        if found is not None:
            return found[0]
    return None


def find_config_file(rootdir: Path, explicit: str | None) -> tuple[Path, bool] | None:
    """The config file and whether it is a pyproject.toml; None when there is none."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"--opscheck-config {explicit}: no such file")
        return path, path.name == "pyproject.toml"
    pyproject = rootdir / "pyproject.toml"
    if pyproject.is_file() and "opscheck" in read_toml(pyproject).get("tool", {}):
        return pyproject, True
    standalone = rootdir / "opscheck.toml"
    if standalone.is_file():
        return standalone, False
    return None


def load_settings(
    rootdir: Path,
    explicit: str | None = None,
    env_name: str | None = None,
    timeout: float | None = None,
    environ: Mapping[str, str] | None = None,
    strict: bool = False,
) -> Settings:
    """Find, read, merge, interpolate and validate the configuration; `strict`: an unset ``${VAR}`` is an
    error (``--opscheck-strict``), not a key left unconfigured."""
    found = find_config_file(rootdir, explicit)
    if found is None:
        raise ConfigError(
            f"no configuration found in {rootdir}: add [tool.opscheck] to pyproject.toml "
            "or write opscheck.toml, or pass --opscheck-config PATH"
        )
    path, is_pyproject = found
    data = read_toml(path)
    tool = data.get("tool")
    if not is_pyproject and isinstance(tool, dict) and "opscheck" in tool:
        # A file given to --opscheck-config holding the README's [tool.opscheck] snippet: read as pyproject.toml
        # is, unless it also has top-level keys of the config (then which one is meant is not clear).
        stray = sorted(k for k in data if k != "tool" and k in _CONFIG_KEYS)
        if stray:
            raise ConfigError(f"{path}: both [tool.opscheck] and top-level keys ({', '.join(stray)}): keep one "
                              "(opscheck.toml takes the keys at its top level, pyproject.toml under [tool.opscheck])")
        is_pyproject = True
    if is_pyproject:
        table = data.get("tool", {}).get("opscheck")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: no [tool.opscheck] table")
    else:
        table = data
    return settings_from_table(table, path, env_name, timeout, environ, strict)


def settings_from_table(
    table: dict[str, Any],
    path: Path,
    env_name: str | None = None,
    timeout: float | None = None,
    environ: Mapping[str, str] | None = None,
    strict: bool = False,
) -> Settings:
    """Validate one config table (as read from `path`) into `Settings`."""
    table = dict(table)
    envs = table.pop("env", {})
    if not isinstance(envs, dict):
        raise ConfigError(f"{path}: env: expected a table of named environments, got {kind(envs)}")
    if env_name is not None:
        if env_name not in envs:
            known = ", ".join(sorted(envs)) or "none"
            raise ConfigError(f"{path}: --opscheck-env {env_name}: no [env.{env_name}] table (known: {known})")
        override = envs[env_name]
        if not isinstance(override, dict):
            raise ConfigError(f"{path}: env.{env_name}: expected a table, got {kind(override)}")
        table = merge(table, override)
    base_dir = path.parent.resolve()
    found = variables(table, base_dir, path, environ if environ is not None else os.environ)
    refuse_literal_secrets(table, path)
    unresolved: dict[str, str] = {}
    secret_values: set[str] = set()
    resolved = interpolate(table, "", found, unresolved, secret_values, path)
    if strict:
        refuse_unset(unresolved, path)
    for name, value in found.items():
        if value and _SECRET_NAME.search(name):
            secret_values.add(value)
    try:
        values = convert(Settings, resolved, "", path)
        check_schemes(values, path)
        check_edge(values, path)
    except ConfigError as exc:  # a refusal never repeats a secret that ${NAME} filled in
        raise ConfigError(_without(secret_values, str(exc))) from None
    if values.get("swarm_stack") and (values.get("compose_project") or values.get("compose_file")):
        other = "compose_project" if values.get("compose_project") else "compose_file"
        raise ConfigError(f"{path}: swarm_stack and {other} are both set: the stack is either a Swarm stack or a "
                          f"Compose project, keep one of them")
    if timeout is not None:
        values["timeout"] = timeout
    secret_values.update(_extra_secrets(values.get("extra", {})))
    if values.get("database_url"):
        password = urlsplit(values["database_url"]).password
        if password:
            secret_values.add(password)
    return Settings(
        **values,
        source=str(path),
        env_name=env_name,
        base_dir=str(base_dir),
        unresolved=unresolved,
        secrets=tuple(sorted(secret_values, key=len, reverse=True)),
    )




def _extra_secrets(table: Any, secret: bool = False) -> list[str]:
    """The values of a team's own keys that are secrets: under a secret-named key (`cache_password`, `token`),
    and the password of any URL among them."""
    if isinstance(table, dict):
        return [v for k, item in table.items() for v in _extra_secrets(item, secret or bool(_SECRET_NAME.search(k)))]
    if isinstance(table, list):
        return [v for item in table for v in _extra_secrets(item, secret)]
    if not isinstance(table, str) or not table:
        return []
    found = [table] if secret else []
    if "://" in table:
        try:
            password = urlsplit(table).password
        except ValueError:
            password = None
        if password:
            found.append(password)
    return found
