"""The new credential keys refused one line at a time, each naming the key and what to write (never a circle of
hints), and accepted in the shapes real apps need."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_opscheck.config import ConfigError, settings_from_table
from pytest_opscheck.config.settings import ApiPath

NESTED = 'auth.body, a table with "{username}" and "{password}" where the backend expects them (e.g. in a user table)'


def load(auth: dict[str, Any], **top: Any) -> Any:
    table = {"backend_url": "http://127.0.0.1:9000", **top, "auth": auth}
    return settings_from_table(table, Path("opscheck.toml"), environ={"PW": "PLANTED-pw-1", "TOK": "PLANTED-tok-1"})


LOGIN = {"login_path": "/login", "username": "smoke", "password": "${PW}"}
REFUSED = [
    ({**LOGIN, "username_field": "user.email"}, "auth.username_field: 'user.email' names a nested field; a login body "
                                                f"that is not two flat fields is written whole as {NESTED}"),
    ({**LOGIN, "password_field": "user[password]"}, "auth.password_field: 'user[password]' names a nested field"),
    ({**LOGIN, "style": "json", "body": {"user": {"email": "{username}"}}}, 'auth.body: no "{password}" in it'),
    ({**LOGIN, "style": "form", "body": {"user": {"email": "{username}", "password": "{password}"}}},
     'auth.body: a form is flat fields, and this body nests tables: write style = "json"'),
    ({**LOGIN, "style": "graphql", "query": "mutation($username: String!, $password: String!) { x }",
      "body": {"p": "{password}"}}, 'auth.body: read only with style = "json" or "form"'),
    ({**LOGIN, "token": "${TOK}"}, 'auth.token: read only with style = "static"'),
    ({"style": "static"}, 'auth.token: style = "static" needs the API token'),
    ({"style": "static", "token": "${TOK}", "session": "cookie"}, "auth.session: read only with a login"),
    ({**LOGIN, "scheme": "Bearer token"}, 'auth.scheme: expected one word such as "Bearer" or "Token"'),
    ({**LOGIN, "token_header": "X Access"}, 'auth.token_header: expected a header name such as "X-Access-Token"'),
    ({**LOGIN, "session": "cookie", "token_header": "X-Access-Token"}, "auth.token_header: the credential is the "
                                                                       "session cookie"),
    ({**LOGIN, "session": "cookie", "csrf": {"header": "X CSRF"}}, "auth.csrf.header: expected a name such as "
                                                                   "X-CSRFToken"),
    ({**LOGIN, "session": "jwt"}, "auth.session: expected 'cookie'"),
    ({**LOGIN, "login_path": "login"}, 'auth.login_path: expected a path on backend_url such as "/login"'),
    ({"style": "static", "token": "PLANTED-literal-token"}, "auth.token: secrets come from the environment"),
]


@pytest.mark.parametrize(("auth", "message"), REFUSED)
def test_refused_in_one_line_naming_the_key(auth: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load(auth)
    text = str(refused.value)
    assert message in text, text
    assert "\n" not in text
    assert "PLANTED-pw-1" not in text and "PLANTED-tok-1" not in text


def test_api_paths_entries() -> None:
    settings = load(LOGIN, api_paths=["/api/items", {"path": "/api/tags", "auth": False}])
    assert settings.api_entries() == [ApiPath("/api/items"), ApiPath("/api/tags", auth=False)]
    for bad, message in [([{"auth": False}], "api_paths[0]: a table needs path"), ([3], "api_paths[0]: expected a "
                         "path or a table, got an integer"), ([{"path": "/x", "public": True}], "api_paths[0].public: "
                         "unknown key")]:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            load(LOGIN, api_paths=bad)


def test_the_shapes_real_apps_need_are_accepted() -> None:
    realworld = load({**LOGIN, "style": "json", "body": {"user": {"email": "{username}", "password": "{password}"}},
                      "token_field": "user.token", "scheme": "Token"})
    assert realworld.auth.body == {"user": {"email": "{username}", "password": "{password}"}}
    django = load({**LOGIN, "style": "form", "session": "cookie", "csrf": {}})
    assert django.auth.csrf is not None and django.auth.csrf.header == "X-CSRFToken"
    static = load({"style": "static", "token": "${TOK}", "token_header": "X-Api-Key"})
    assert static.auth.token == "PLANTED-tok-1" and "PLANTED-tok-1" in static.secrets
    assert static.missing("auth.login_path") is None  # the static token stands for the login's keys
    assert load(LOGIN, health_path="").health_path == ""
    assert load(LOGIN, websocket_url="ws://127.0.0.1:9000/graphql",
                websocket_protocol="graphql-ws").websocket_protocol == "graphql-ws"
