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
        _check_bound(values, auth, path)
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


_HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP token (RFC 9110): a header name, an auth scheme
# How a nested login body is written, said without a `password = ...` the redactor would rightly mask.
NESTED_BODY = ('auth.body, a table with "{username}" and "{password}" where the backend expects them (e.g. in a '
               "user table)")


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or (443 if scheme == "https" else 80)


def _shown_origin(origin: tuple[str, str, int]) -> str:
    return f"{origin[0]}://{origin[1]}:{origin[2]}"


def _check_bound(values: dict[str, Any], auth: Any, path: Path) -> None:
    """The credential is bound to backend_url's origin (and auth.origin's): no login or probe elsewhere, and a
    credential obtained over https is never sent to a ws:// WebSocket."""
    backend = values.get("backend_url")
    if not backend:
        return
    bound = {_origin(backend)}
    if auth.origin:
        bound.add(_origin(auth.origin))
    for key in ("login_path", "probe_path"):
        value = getattr(auth, key) or ""
        if not urlsplit(value).scheme:
            if value and not value.startswith("/"):
                raise ConfigError(f'{path}: auth.{key}: expected a path on backend_url such as "/{value}", '
                                  f"got {value!r}")
            continue
        there = _origin(value)
        if there not in bound:
            raise ConfigError(f"{path}: auth.{key}: {_shown_origin(there)} is not backend_url's origin "
                              f"({_shown_origin(_origin(backend))}): the credential goes only there; write a path "
                              f'on backend_url, or name that origin as auth.origin = "{_shown_origin(there)}"')
    ws_url, ws_token = values.get("websocket_url"), values.get("websocket_token", "none")
    login_url = auth.login_path if urlsplit(auth.login_path).scheme else backend
    if ws_url and ws_token != "none" and urlsplit(login_url).scheme == "https" and urlsplit(ws_url).scheme == "ws":
        raise ConfigError(f'{path}: websocket_token "{ws_token}": the credential is obtained over https and is never '
                          "sent over a ws:// WebSocket in clear text: use a wss:// websocket_url, or set "
                          'websocket_token to "none"')


def _check_shape(auth: Any, path: Path) -> None:
    """The credential's own keys: a static token, a body template, a scheme or header, a cookie session."""
    if auth.style == "static":
        if auth.token is None:
            raise ConfigError(f'{path}: auth.token: style = "static" needs the API token, e.g. '
                              'token = "${API_TOKEN}" (no login is made)')
        for key in ("body", "query", "session", "csrf"):
            if getattr(auth, key) is not None:
                raise ConfigError(f'{path}: auth.{key}: read only with a login, and style = "static" makes none: '
                                  f"drop {key}")
    elif auth.token is not None:
        raise ConfigError(f'{path}: auth.token: read only with style = "static" (style is "{auth.style}"): '
                          'write style = "static" for a long-lived API token, or drop token')
    if not _HEADER.fullmatch(auth.scheme):
        raise ConfigError(f'{path}: auth.scheme: expected one word such as "Bearer" or "Token", got {auth.scheme!r}')
    if auth.token_header is not None and not _HEADER.fullmatch(auth.token_header):
        raise ConfigError(f'{path}: auth.token_header: expected a header name such as "X-Access-Token", '
                          f"got {auth.token_header!r}")
    if auth.session == "cookie" and auth.token_header is not None:
        raise ConfigError(f'{path}: auth.token_header: the credential is the session cookie (session = "cookie"): '
                          "drop token_header, or drop session for a token")
    if auth.csrf is not None:
        for key in ("cookie", "header"):
            name = getattr(auth.csrf, key)
            if not _HEADER.fullmatch(name):
                example = "csrftoken" if key == "cookie" else "X-CSRFToken"
                raise ConfigError(f"{path}: auth.csrf.{key}: expected a name such as {example}, got {name!r}")
    if auth.body is None:
        return
    if auth.style not in ("json", "form"):
        raise ConfigError(f'{path}: auth.body: read only with style = "json" or "form" (style is "{auth.style}")')
    leaves = list(_leaves(auth.body))
    if not any("{password}" in leaf for leaf in leaves):
        raise ConfigError(f'{path}: auth.body: no "{{password}}" in it, so the password would never be sent: write '
                          f"it where the backend expects the password: {NESTED_BODY}")
    if auth.style == "form" and any(isinstance(v, dict | list) for v in auth.body.values()):
        raise ConfigError(f'{path}: auth.body: a form is flat fields, and this body nests tables: write '
                          'style = "json", or flatten it')


def _leaves(data: Any) -> Any:
    if isinstance(data, dict):
        for value in data.values():
            yield from _leaves(value)
    elif isinstance(data, list):
        for value in data:
            yield from _leaves(value)
    elif isinstance(data, str):
        yield data


def _check_login(auth: Any, path: Path) -> None:
    _check_shape(auth, path)
    for key in ("username_field", "password_field"):
        name = getattr(auth, key)
        if "." in name or "[" in name:
            raise ConfigError(f"{path}: auth.{key}: {name!r} names a nested field; a login body that is not two flat "
                              f"fields is written whole as {NESTED_BODY}")
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
