"""Secrets in the config: a literal secret in a URL (`?password=` in database_url, a userinfo password, a
`?token=`) is refused naming the key and never echoed; what `${VAR}` puts into a URL's userinfo password or
query is a secret (its name need not look secret) and the userinfo is percent-encoded; a value the loader
cannot accept is refused without being repeated."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from pytest_opscheck.config import ConfigError, settings_from_table
from pytest_opscheck.redact import Redactor

PATH = Path("/srv/app/opscheck.toml")


@pytest.mark.parametrize(
    ("key", "url", "says"),
    [
        ("database_url", "postgresql://app@db:5432/app?password={planted}", "database_url: ?password= holds a literal"),
        ("database_url", "postgresql://app@db/app?sslmode=require&sslpassword={planted}", "?sslpassword= holds"),
        ("backend_url", "https://ops:{planted}@api.example.test", "backend_url: the password in the URL must come"),
        ("websocket_url", "wss://rt.example.test/ws?token={planted}", "websocket_url: ?token= holds a literal"),
        ("frontend_url", "https://app.example.test/?sig={planted}", "frontend_url: ?sig= holds a literal"),
    ],
)
def test_literal_secret_in_a_url_is_refused(key: str, url: str, says: str) -> None:
    planted = f"lit{secrets.token_hex(8)}"
    with pytest.raises(ConfigError) as refused:
        settings_from_table({key: url.format(planted=planted)}, PATH, environ={})
    message = str(refused.value)
    assert message.startswith(f"{PATH}: ") and says in message
    assert planted not in message and "\n" not in message


def test_literal_password_in_database_url_is_a_usage_error(pytester: pytest.Pytester) -> None:
    planted = f"lit{secrets.token_hex(8)}"
    pytester.makefile(".toml", opscheck=f'database_url = "postgresql://app@127.0.0.1:9/app?password={planted}"\n')
    result = pytester.runpytest_subprocess("--opscheck", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "database_url: ?password= holds a literal secret" in result.stderr.str()
    assert planted not in result.stdout.str() + result.stderr.str()


def test_settings_are_allowed_in_a_query_and_variables_are_not_echoed() -> None:
    environ = {"SCHEMA": "tenant_one", "PW": f"pw{secrets.token_hex(6)}", "SMOKE_PASSWORD": f"{secrets.token_hex(6)}"}
    loaded = settings_from_table(
        {"database_url": "postgresql://app:${PW}@db:5432/app?sslmode=require&schema=${SCHEMA}"}, PATH, environ=environ
    )
    assert loaded.database_url is not None and loaded.database_url.endswith("?sslmode=require&schema=tenant_one")
    assert "tenant_one" not in loaded.secrets, "a setting from the environment is not a secret"
    with pytest.raises(ConfigError) as refused:
        settings_from_table({"auth": {"login_path": "/l", "style": "${SMOKE_PASSWORD}"}}, PATH, environ=environ)
    assert environ["SMOKE_PASSWORD"] not in str(refused.value) and "auth.style: expected" in str(refused.value)


def test_variables_in_a_url_userinfo_or_query_are_secrets() -> None:
    environ = {"DB_PW": f"a/b@c#d?{secrets.token_hex(6)}", "WS_TICKET": f"t{secrets.token_hex(8)}",
               "APP_SIG": f"s{secrets.token_hex(8)}", "USER": "app"}
    loaded = settings_from_table(
        {
            "database_url": "postgresql://${USER}:${DB_PW}@127.0.0.1:5432/app",
            "websocket_url": "ws://127.0.0.1:9/rt?ticket=${WS_TICKET}",
            "api_paths": ["/api/items?sig=${APP_SIG}&page=2"],
        },
        PATH,
        environ=environ,
    )
    # The userinfo is percent-encoded: the password's `/`, `@`, `#` and `?` do not end it.
    assert loaded.database_url is not None
    assert loaded.database_url.startswith("postgresql://app:a%2Fb%40c%23d%3F")
    assert loaded.database_url.endswith("@127.0.0.1:5432/app")
    for name in ("DB_PW", "WS_TICKET", "APP_SIG"):
        assert environ[name] in loaded.secrets, name
    assert "app" not in loaded.secrets, "the user name is not a secret"
    redact = Redactor(loaded.secrets)
    assert redact(f"GET /api/items?sig={environ['APP_SIG']}&page=2") == "GET /api/items?sig=***&page=2"
    assert redact(str(loaded.websocket_url)) == "ws://127.0.0.1:9/rt?ticket=***"
    assert redact(str(loaded.database_url)) == "postgresql://app:***@127.0.0.1:5432/app"
