"""The one place where configuration is read, validated and turned into a frozen `Settings`.

Sources, in order: ``--opscheck-config PATH``, else ``[tool.opscheck]`` in the rootdir's
``pyproject.toml``, else ``opscheck.toml`` in the rootdir. ``[tool.opscheck.env.NAME]`` (or
``[env.NAME]`` in ``opscheck.toml``) overrides the top level for ``--opscheck-env NAME``.
``${NAME}`` is read from the environment, then from the stack's ``.env``. Every error is a
`ConfigError` whose message is one line naming the key and the file.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

DEFAULT_TIMEOUT = 5.0
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|AUTH", re.IGNORECASE)


class ConfigError(Exception):
    """A configuration problem, told in one line that names the key and the file."""


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


@dataclass(frozen=True)
class Migrations:
    """Where the expected schema version comes from."""

    tool: Literal["alembic", "prisma"] = "alembic"
    script_location: str | None = None
    migrations_dir: str = "prisma/migrations"


@dataclass(frozen=True)
class Auth:
    """The smoke account and the endpoints the auth checks use."""

    login_path: str = ""
    style: Literal["form", "json"] = "form"
    username: str | None = None
    password: str | None = None
    probe_path: str | None = None
    token_field: str = "access_token"
    origin: str | None = None


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
    env_file: str | None = None
    backend_url: str | None = None
    health_path: str = "/health"
    metrics_path: str | None = None
    frontend_url: str | None = None
    frontend_routes: list[str] = field(default_factory=list)
    api_paths: list[str] = field(default_factory=list)
    slow_seconds: float = 2.0
    database_url: str | None = None
    websocket_url: str | None = None
    migrations: Migrations | None = None
    required_env: dict[str, list[str]] = field(default_factory=dict)
    auth: Auth | None = None
    smtp: Smtp | None = None
    runbook: str | None = None
    checks: list[str] = field(default_factory=list)
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
        if key in self.unresolved:
            return f"not configured: {key} (${{{self.unresolved[key]}}} is not set)"
        value: Any = self
        for part in key.split("."):
            value = getattr(value, part, None) if value is not None else None
        if value in (None, "", [], {}):
            return f"not configured: {key}"
        return None

    def path(self, relative: str) -> Path:
        """A path of the config resolved against the config file's folder."""
        return (Path(self.base_dir) / relative).resolve()


_LOADER_FIELDS = {"source", "env_name", "base_dir", "unresolved", "secrets"}
# Keys whose value must come from the environment, never be written in the file.
_SECRET_KEYS = {"auth.password", "smtp.password"}


def find_config_file(rootdir: Path, explicit: str | None) -> tuple[Path, bool] | None:
    """The config file and whether it is a pyproject.toml; None when there is none."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"--opscheck-config {explicit}: no such file")
        return path, path.name == "pyproject.toml"
    pyproject = rootdir / "pyproject.toml"
    if pyproject.is_file() and "opscheck" in _read_toml(pyproject).get("tool", {}):
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
) -> Settings:
    """Find, read, merge, interpolate and validate the configuration."""
    found = find_config_file(rootdir, explicit)
    if found is None:
        raise ConfigError(
            f"no configuration found in {rootdir}: add [tool.opscheck] to pyproject.toml "
            "or write opscheck.toml, or pass --opscheck-config PATH"
        )
    path, is_pyproject = found
    data = _read_toml(path)
    if is_pyproject:
        table = data.get("tool", {}).get("opscheck")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: no [tool.opscheck] table")
    else:
        table = data
    return settings_from_table(table, path, env_name, timeout, environ)


def settings_from_table(
    table: dict[str, Any],
    path: Path,
    env_name: str | None = None,
    timeout: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Validate one config table (as read from `path`) into `Settings`."""
    table = dict(table)
    envs = table.pop("env", {})
    if not isinstance(envs, dict):
        raise ConfigError(f"{path}: env: expected a table of named environments, got {_kind(envs)}")
    if env_name is not None:
        if env_name not in envs:
            known = ", ".join(sorted(envs)) or "none"
            raise ConfigError(f"{path}: --opscheck-env {env_name}: no [env.{env_name}] table (known: {known})")
        override = envs[env_name]
        if not isinstance(override, dict):
            raise ConfigError(f"{path}: env.{env_name}: expected a table, got {_kind(override)}")
        table = _merge(table, override)
    base_dir = path.parent.resolve()
    variables = _variables(table, base_dir, path, environ if environ is not None else os.environ)
    _refuse_literal_secrets(table, path)
    unresolved: dict[str, str] = {}
    secret_values: set[str] = set()
    resolved = _interpolate(table, "", variables, unresolved, secret_values, path)
    values = _convert(Settings, resolved, "", path)
    _check_schemes(values, path)
    if timeout is not None:
        values["timeout"] = timeout
    for name, value in variables.items():
        if value and _SECRET_NAME.search(name):
            secret_values.add(value)
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


_SCHEMES = {
    "backend_url": ("http", "https"),
    "frontend_url": ("http", "https"),
    "websocket_url": ("ws", "wss"),
    "database_url": ("postgresql", "postgres"),
}


def _check_schemes(values: dict[str, Any], path: Path) -> None:
    for key, schemes in _SCHEMES.items():
        url = values.get(key)
        if url is None:
            continue
        parts = urlsplit(url)
        if parts.scheme not in schemes or not parts.hostname:
            got = f"{parts.scheme}://" if parts.scheme else "no scheme"
            raise ConfigError(f"{path}: {key}: expected a {schemes[0]}:// URL with a host, got {got}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 (byte {exc.start}): save the file as UTF-8") from None


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _variables(table: dict[str, Any], base_dir: Path, path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The process environment over the stack's .env file (Compose's convention)."""
    env_file = table.get("env_file", ".env")
    if not isinstance(env_file, str):
        raise ConfigError(f"{path}: env_file: expected a string, got {_kind(env_file)}")
    dotenv_path = base_dir / env_file
    values: dict[str, str] = {}
    if dotenv_path.is_file():
        from dotenv import dotenv_values

        try:
            values = {k: v for k, v in dotenv_values(dotenv_path, interpolate=False).items() if v is not None}
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: env_file: cannot read {dotenv_path}: {exc}") from None
    elif "env_file" in table:
        raise ConfigError(f"{path}: env_file: {dotenv_path} does not exist")
    values.update(environ)
    return values


def _refuse_literal_secrets(table: dict[str, Any], path: Path) -> None:
    for dotted in _SECRET_KEYS:
        section, key = dotted.split(".")
        value = table.get(section, {}).get(key) if isinstance(table.get(section), dict) else None
        if isinstance(value, str) and value and not _VAR.fullmatch(value):
            raise ConfigError(
                f'{path}: {dotted}: secrets come from the environment; write {key} = "${{NAME}}" '
                "and set NAME in the environment or the .env file"
            )
    url = table.get("database_url")
    if isinstance(url, str):
        userinfo = url.split("://", 1)[-1].split("@", 1)
        if len(userinfo) == 2 and ":" in userinfo[0]:
            password = userinfo[0].split(":", 1)[1]
            if password and not _VAR.fullmatch(password):
                raise ConfigError(
                    f"{path}: database_url: the password must come from the environment; "
                    'write "postgresql://user:${POSTGRES_PASSWORD}@host:5432/db"'
                )


def _interpolate(
    value: Any,
    key: str,
    variables: Mapping[str, str],
    unresolved: dict[str, str],
    secret_values: set[str],
    path: Path,
) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            sub = f"{key}.{k}" if key else str(k)
            out[k] = _interpolate(v, sub, variables, unresolved, secret_values, path)
        return out
    if isinstance(value, list):
        return [_interpolate(v, key, variables, unresolved, secret_values, path) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    missing = [name for name in _VAR.findall(value) if not variables.get(name)]
    if missing:
        unresolved[key] = missing[0]
        return None
    if key in _SECRET_KEYS:
        secret_values.update(variables[name] for name in _VAR.findall(value))
    return _VAR.sub(lambda m: variables[m.group(1)], value)


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _convert(cls: type, table: Any, prefix: str, path: Path) -> dict[str, Any]:
    """Check `table` against the dataclass `cls`; return the constructor's keyword arguments."""
    where = prefix.rstrip(".") or "[tool.opscheck]"
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {where}: expected a table, got {_kind(table)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)} - _LOADER_FIELDS
    out: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            close = difflib.get_close_matches(str(key), sorted(fields), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{path}: {dotted}: unknown key{hint}")
        if value is None:
            continue
        out[key] = _coerce(hints[key], value, dotted, path)
    return out


def _coerce(hint: Any, value: Any, dotted: str, path: Path) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, dotted, path)
    if dataclasses.is_dataclass(hint):
        return hint(**_convert(hint, value, f"{dotted}.", path))  # type: ignore[operator,arg-type]
    if origin is Literal:
        if value not in args:
            choices = " or ".join(repr(a) for a in args)
            raise ConfigError(f"{path}: {dotted}: expected {choices}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: {dotted}: expected a list of strings, got {_kind(value)}")
        for item in value:
            if not isinstance(item, str):
                raise ConfigError(f"{path}: {dotted}: expected a list of strings, got an item that is {_kind(item)}")
        return list(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {dotted}: expected a table of service = [names], got {_kind(value)}")
        return {k: _coerce(args[1], v, f"{dotted}.{k}", path) for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: {dotted}: expected true or false, got {_kind(value)}")
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or (hint is int and isinstance(value, float)):
            raise ConfigError(f"{path}: {dotted}: expected {_kind(hint())}, got {_kind(value)}")
        if value < 0:
            raise ConfigError(f"{path}: {dotted}: expected a value of 0 or more, got {value}")
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {dotted}: expected a string, got {_kind(value)}")
        return value
    raise ConfigError(f"{path}: {dotted}: unsupported value")  # pragma: no cover - schema bug
