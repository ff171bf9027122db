"""The login and the WebSocket keys that are valid one by one but not together: a GraphQL login without its
mutation, a mutation without the variables the product fills in, a token asked of a login that is not
configured. Each problem is one line naming the key and what to write instead."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .values import ConfigError

# `$name:` in a GraphQL operation's variable definitions (a use of the variable, `$name)` or `$name,`, is not).
_DECLARED = re.compile(r"\$([_A-Za-z][_0-9A-Za-z]*)\s*:")
_FIELD = re.compile(r"[_A-Za-z][_0-9A-Za-z-]*")
EXAMPLE_MUTATION = ("mutation Login($username: String!, $password: String!) "
                    "{ login(username: $username, password: $password) { accessToken } }")


def check_edge(values: dict[str, Any], path: Path) -> None:
    """Raise `ConfigError` (one line) when the login or the WebSocket keys do not fit together."""
    auth = values.get("auth")
    if auth is not None:
        _check_login(auth, path)
    token = values.get("websocket_token", "none")
    if token != "none" and auth is None:
        raise ConfigError(f'{path}: websocket_token "{token}": the token comes from the login: configure [auth], '
                          'or set websocket_token to "none" when the WebSocket takes no token')
    url = values.get("websocket_url")
    if values.get("websocket_protocol") == "socket.io" and url:
        eio = parse_qs(urlsplit(url).query).get("EIO")
        if eio and eio != ["4"]:
            raise ConfigError(f"{path}: websocket_url: EIO={eio[0]} is not engine.io v4 (Socket.io 3 and later); "
                              "drop EIO from the URL")


def _check_login(auth: Any, path: Path) -> None:
    for key in ("username_field", "password_field"):
        name = getattr(auth, key)
        if not _FIELD.fullmatch(name):
            raise ConfigError(f'{path}: auth.{key}: expected a field name such as "email", got {name!r}')
    if auth.username_field == auth.password_field:
        raise ConfigError(f"{path}: auth.password_field: the same name as auth.username_field "
                          f"({auth.username_field!r}): name the password's own field")
    parts = auth.token_field.split(".")
    if not all(_FIELD.fullmatch(p) for p in parts):
        raise ConfigError(f"{path}: auth.token_field: expected a dotted path such as data.login.accessToken, "
                          f"got {auth.token_field!r}")
    if auth.style != "graphql":
        if auth.query:
            raise ConfigError(f'{path}: auth.query: read only with style = "graphql" (style is "{auth.style}"): '
                              'write style = "graphql", or drop query')
        return
    if not (auth.query or "").strip():
        raise ConfigError(f'{path}: auth.query: style = "graphql" needs the login mutation, e.g. '
                          f'query = "{EXAMPLE_MUTATION}"')
    declared = _DECLARED.findall(auth.query)
    for key in ("username_field", "password_field"):
        name = getattr(auth, key)
        if name not in declared:
            found = ", ".join(f"${d}" for d in dict.fromkeys(declared)) or "none"
            raise ConfigError(f"{path}: auth.query: the mutation declares no ${name} variable (it declares "
                              f"{found}): the product sends the {key.split('_')[0]} as ${name}; rename the "
                              f"variable, or set auth.{key} to its name")
