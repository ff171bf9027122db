"""Reading a config file's values: TOML, named environments merged, ``${NAME}`` from the environment and
the stack's ``.env``, literal secrets refused, and every value checked against its field's type."""

from __future__ import annotations

import dataclasses
import difflib
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from .secrets import (
    BadReference,
    Required,
    TextError,
    Unset,
    check_list,
    check_text,
    environment_only,
    names,
    refuse_url_literals,
    substitute,
)

# Keys whose value must come from the environment, never be written in the file.
_SECRET_KEYS = {"auth.password", "auth.token", "smtp.password"}
# Fields of Settings that the loader fills, not the file.
_LOADER_FIELDS = {"source", "env_name", "base_dir", "unresolved", "secrets"}


class ConfigError(Exception):
    """A configuration problem, told in one line that names the key and the file."""


_SCHEMES = {
    "backend_url": ("http", "https"),
    "frontend_url": ("http", "https"),
    "websocket_url": ("ws", "wss"),
    "database_url": ("postgresql", "postgres"),
}


def check_schemes(values: dict[str, Any], path: Path) -> None:
    for key, schemes in _SCHEMES.items():
        url = values.get(key)
        if url is None:
            continue
        parts = urlsplit(url)
        if parts.scheme not in schemes or not parts.hostname:
            got = f"{parts.scheme}://" if parts.scheme else "no scheme"
            raise ConfigError(f"{path}: {key}: expected a {schemes[0]}:// URL with a host, got {got}")


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 (byte {exc.start}): save the file as UTF-8") from None


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def variables(table: dict[str, Any], base_dir: Path, path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The process environment over the stack's .env file (Compose's convention)."""
    env_file = table.get("env_file", ".env")
    if not isinstance(env_file, str):
        raise ConfigError(f"{path}: env_file: expected a string, got {kind(env_file)}")
    dotenv_path = base_dir / env_file
    values: dict[str, str] = {}
    if dotenv_path.is_file():
        from .env import EnvFileError, read_env_file

        try:  # its ${NAME} references expanded as Compose expands them
            values = read_env_file(dotenv_path, environ)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: env_file: cannot read {dotenv_path}: {exc}") from None
        except EnvFileError as exc:
            raise ConfigError(f"{path}: env_file: {dotenv_path}: {exc} (Compose refuses it too)") from None
    elif "env_file" in table:
        raise ConfigError(f"{path}: env_file: {dotenv_path} does not exist")
    values.update(environ)
    return values


def refuse_literal_secrets(table: dict[str, Any], path: Path) -> None:
    for dotted in _SECRET_KEYS:
        section, key = dotted.split(".")
        value = table.get(section, {}).get(key) if isinstance(table.get(section), dict) else None
        if isinstance(value, str) and value and not environment_only(value):
            raise ConfigError(
                f'{path}: {dotted}: secrets come from the environment; write {key} = "${{NAME}}" '
                "and set NAME in the environment or the .env file"
            )
    url = table.get("database_url")
    if isinstance(url, str):
        userinfo = url.split("://", 1)[-1].split("@", 1)
        if len(userinfo) == 2 and ":" in userinfo[0]:
            password = userinfo[0].split(":", 1)[1]
            if password and not environment_only(password):
                raise ConfigError(
                    f"{path}: database_url: the password must come from the environment; "
                    'write "postgresql://user:${POSTGRES_PASSWORD}@host:5432/db"'
                )
    literal = refuse_url_literals(table, path)
    if literal:
        raise ConfigError(literal)


def interpolate(
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
            out[k] = interpolate(v, sub, variables, unresolved, secret_values, path)
        return out
    if isinstance(value, list):
        return [interpolate(v, key, variables, unresolved, secret_values, path) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    try:  # a URL's userinfo and query from the environment: secrets
        text, secrets = substitute(key, value, variables)
    except Unset as unset:  # the key is left unconfigured; --opscheck-strict refuses it
        unresolved[key] = unset.name
        return None
    except Required as required:
        raise ConfigError(f"{path}: {key}: {required}") from None
    except BadReference as bad:
        raise ConfigError(f"{path}: {key}: {bad}") from None
    if key in _SECRET_KEYS:
        secret_values.update(variables[name] for name in names(value) if variables.get(name))
        secret_values.add(text)
    secret_values.update(secrets)
    return text


def refuse_unset(unresolved: Mapping[str, str], path: Path) -> None:
    """``--opscheck-strict``: a key whose ``${VAR}`` is unset is a usage error naming the key and the variable,
    instead of a key left unconfigured whose checks are skipped."""
    for key, name in sorted(unresolved.items()):
        raise ConfigError(
            f"{path}: {key}: ${{{name}}} is not set (--opscheck-strict: every ${{VAR}} of the config must be "
            f"set): set {name} in the environment or the .env file, or write ${{{name}:-default}}"
        )


def kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def convert(cls: type, table: Any, prefix: str, path: Path) -> dict[str, Any]:
    """Check `table` against the dataclass `cls`; return the constructor's keyword arguments."""
    where = prefix.rstrip(".") or "[tool.opscheck]"
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {where}: expected a table, got {kind(table)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)} - _LOADER_FIELDS
    out: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            plain = len(str(key)) <= 100 and str(key).isprintable()  # a hostile key is not echoed whole
            close = difflib.get_close_matches(str(key), sorted(fields), n=1) if plain else []
            hint = f" (did you mean {close[0]}?)" if close else ""
            shown = dotted if plain else f"{dotted[:60]!r}…"
            raise ConfigError(f"{path}: {shown}: unknown key{hint}")
        if value is None:
            continue
        out[key] = _coerce(hints[key], value, dotted, path)
    return out


def _coerce(hint: Any, value: Any, dotted: str, path: Path) -> Any:
    if hint is Any:  # a team's own key ([tool.opscheck.extra]): any TOML value, its ${VAR}s already expanded
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, dotted, path)
    if dataclasses.is_dataclass(hint):
        return hint(**convert(hint, value, f"{dotted}.", path))  # type: ignore[operator,arg-type]
    if origin is Literal:
        if value not in args:
            choices = " or ".join(repr(a) for a in args)
            # Echoed only when it reads as a word: a value ${NAME} filled in may be anything, a secret too.
            got = repr(value) if re.fullmatch(r"[\w.-]{1,40}", str(value)) else f"another {kind(value)[2:]}"
            raise ConfigError(f"{path}: {dotted}: expected {choices}, got {got}")
        return value
    if origin is list and dataclasses.is_dataclass(typing.get_args(args[0])[0] if typing.get_args(args[0]) else None):
        return _entries(typing.get_args(args[0])[0], value, dotted, path)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: {dotted}: expected a list of strings, got {kind(value)}")
        for item in value:
            if not isinstance(item, str):
                raise ConfigError(f"{path}: {dotted}: expected a list of strings, got an item that is {kind(item)}")
        _text(check_list, dotted, value, path)
        return list(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {dotted}: expected a table of service = [names], got {kind(value)}")
        return {k: _coerce(args[1], v, f"{dotted}.{k}", path) for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: {dotted}: expected true or false, got {kind(value)}")
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or (hint is int and isinstance(value, float)):
            raise ConfigError(f"{path}: {dotted}: expected {kind(hint())}, got {kind(value)}")
        if value < 0:
            raise ConfigError(f"{path}: {dotted}: expected a value of 0 or more, got {value}")
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {dotted}: expected a string, got {kind(value)}")
        _text(check_text, dotted, value, path)
        return value
    raise ConfigError(f"{path}: {dotted}: unsupported value")  # pragma: no cover - schema bug


def _entries(entry: Any, value: Any, dotted: str, path: Path) -> list[Any]:
    """A list whose items are strings or tables of `entry` (api_paths: "/p" or { path = "/p", auth = false })."""
    if not isinstance(value, list):
        raise ConfigError(f"{path}: {dotted}: expected a list of paths, got {kind(value)}")
    _text(check_list, dotted, [item for item in value if isinstance(item, str)], path)
    out: list[Any] = []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            fields = convert(entry, item, f"{dotted}[{i}].", path)
            first = dataclasses.fields(entry)[0].name
            if first not in fields:
                raise ConfigError(f'{path}: {dotted}[{i}]: a table needs {first}, e.g. {{ {first} = "/api/tags", '
                                  "auth = false }")
            out.append(entry(**fields))
        elif isinstance(item, str):
            out.append(item)
        else:
            raise ConfigError(f"{path}: {dotted}[{i}]: expected a path or a table, got {kind(item)}")
    return out


def _text(check: Any, dotted: str, value: Any, path: Path) -> None:
    """`check(dotted, value)` (config_secrets), its refusal a usage error naming the key, never the value."""
    try:
        check(dotted.split("[")[0], value)
    except TextError as exc:
        raise ConfigError(f"{path}: {dotted}: {exc}") from None
