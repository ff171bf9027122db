"""Logins and WebSockets as a real Express app has them (tests/anyapp/express_app.js under node, one server for
the module, its npm packages installed once into a cache folder): a cookie session (express-session's
connect.sid, passport-local) with the right password, a wrong one, a malformed request and the backend failing
behind the login; API paths asked with the session; and, on the same server, GraphQL subscriptions over the
legacy subscriptions-transport-ws protocol as Apollo Server 2/3 serve them (`websocket_protocol = "graphql-ws"`),
that server's answer to the other protocols (it echoes the offered subprotocol, then closes 1002), and a socket
that closes at once with 4406, named at once by ws.ping."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from anyapp.node import EXPRESS_PACKAGES, node_server
from anyapp.sweeps import fault, outcomes, readme_config, sweep
from realservices import ServiceUnavailable

from pytest_opscheck.config import settings_from_table
from pytest_opscheck.probes.diagnosis import auth as probe
from pytest_opscheck.probes.diagnosis import websocket as ws_probe
from pytest_opscheck.probes.resource.auth import open_auth
from pytest_opscheck.probes.resource.websocket import open_ws

PASSWORD = "PLANTED-express-pw-8a3c"
SESSION_SECRET = "PLANTED-session-secret-77e1"
SECRETS = (PASSWORD, SESSION_SECRET)
SESSION = {"login_path": "/api/auth/login", "style": "json", "username": "smoke", "password": "${APP_PASSWORD}",
           "session": "cookie", "probe_path": "/api/me"}


@pytest.fixture(scope="module")
def express() -> Iterator[str]:
    env = {"SMOKE_USER": "smoke", "SMOKE_PASSWORD": PASSWORD, "SESSION_SECRET": SESSION_SECRET}
    try:
        with node_server("express_app.js", EXPRESS_PACKAGES, env) as url:
            yield url
    except ServiceUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_PASSWORD", PASSWORD)


def settings(url: str, password: str = PASSWORD, **top: Any) -> Any:
    auth = top.pop("auth", SESSION)
    table = {"backend_url": url, "timeout": 2.0, **top, "auth": auth}
    return settings_from_table(table, Path("opscheck.toml"), environ={"APP_PASSWORD": password})


def ws_url(url: str, path: str) -> str:
    return url.replace("http://", "ws://") + path


def test_readme_quickstart_cookie_session_and_api_paths(
    pytester: pytest.Pytester, express: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's Express config, as written: the session cookie is the credential, API paths asked with it."""
    monkeypatch.setenv("OPSCHECK_USER", "smoke")
    monkeypatch.setenv("OPSCHECK_PASSWORD", PASSWORD)
    config = readme_config("express", express)
    select = "auth.login or auth.token_accepted or auth.rejects_bad_password or api.no_server_errors"
    records = sweep(pytester, config, select, SECRETS, file="pyproject")
    assert outcomes(records) == {"auth.login": "passed", "auth.token_accepted": "passed",
                                 "auth.rejects_bad_password": "passed", "api.no_server_errors": "passed"}, records
    assert records["auth.login"]["evidence"]["session"] == "a session cookie (value withheld)"
    with fault(express, "items"):
        broken = sweep(pytester, config, "api.no_server_errors", SECRETS, file="pyproject")
    assert broken["api.no_server_errors"]["message"] == "1 of 2 API path(s) fail: /api/items → 500 (logged in)"


def test_cookie_session_wrong_password(express: str) -> None:
    with closing(open_auth(settings(express, password="PLANTED-not-it"))) as session:
        finding = probe.login(session)
    assert finding.cause == ('login /api/auth/login refused the smoke account smoke: 401 Unauthorized, it says '
                             '"Incorrect username or password." (wrong password, or the account is missing or '
                             'inactive)')


def test_cookie_session_malformed_request(express: str) -> None:
    auth = {**SESSION, "username_field": "email"}
    with closing(open_auth(settings(express, auth=auth))) as session:
        finding = probe.login(session)
    assert finding.cause.startswith("login /api/auth/login: the login request does not match the backend: 400 Bad "
                                    "Request, it says Missing credentials ("), finding.cause


def test_cookie_session_backend_failing_behind_the_login(express: str) -> None:
    with fault(express, "db"), closing(open_auth(settings(express))) as session:
        finding = probe.login(session)
    assert finding.cause == "login /api/auth/login fails with a server error: 500 Internal Server Error"


# --- the legacy GraphQL WebSocket protocol ------------------------------------------------------------------


def test_legacy_graphql_ws_handshake_and_ping(express: str) -> None:
    target = open_ws(settings(express, websocket_url=ws_url(express, "/graphql"), websocket_protocol="graphql-ws"))
    handshake = ws_probe.handshake(target)
    assert handshake.ok, handshake
    assert handshake.evidence["graphql-ws"].startswith(
        "subprotocol graphql-ws (subscriptions-transport-ws); connection_init → connection_ack in ")
    ping = ws_probe.ping(target)
    assert ping.ok, ping


@pytest.mark.parametrize("protocol", ["plain", "graphql-transport-ws"])
def test_the_other_protocols_on_a_legacy_server_get_the_legacy_hint(express: str, protocol: str) -> None:
    target = open_ws(settings(express, websocket_url=ws_url(express, "/graphql"), websocket_protocol=protocol))
    finding = ws_probe.handshake(target)
    assert not finding.ok
    assert "code 1002" in finding.cause, finding.cause
    assert finding.cause.endswith('; it speaks the legacy subscriptions-transport-ws protocol (subprotocol '
                                  '"graphql-ws"): set websocket_protocol = "graphql-ws"'), finding.cause


def test_legacy_connection_error_is_named(express: str) -> None:
    with fault(express, "ws"):
        target = open_ws(settings(express, websocket_url=ws_url(express, "/graphql"), websocket_protocol="graphql-ws"))
    assert not ws_probe.handshake(target).ok
    assert target.first is not None and target.first.cause is not None
    assert target.first.cause.startswith('connection_init refused with connection_error: "Missing auth token!"'), \
        target.first.cause


def test_ping_names_a_close_at_once(express: str) -> None:
    target = open_ws(settings(express, websocket_url=ws_url(express, "/strict")))
    started = time.monotonic()
    finding = ws_probe.ping(target)
    assert time.monotonic() - started < target.timeout, "the close should be named at once, not after a timeout"
    assert not finding.ok
    assert "code 4406 Subprotocol not acceptable" in finding.cause, finding.cause
    assert "does not answer pings" not in finding.cause


# --- a JWT in a header of its own (passport-jwt) ---------------------------------------------------------------


JWT = {"login_path": "/api/jwt/login", "style": "json", "username": "smoke", "password": "${APP_PASSWORD}",
       "token_field": "token", "probe_path": "/api/jwt/me"}


def test_token_in_a_header_of_its_own(express: str) -> None:
    with closing(open_auth(settings(express, auth={**JWT, "token_header": "X-Access-Token"}))) as session:
        assert probe.login(session).ok
        accepted = probe.token_accepted(session, "/api/jwt/me")
    assert accepted.ok, accepted
    assert accepted.evidence["probe"].endswith("(with the token in X-Access-Token)")


def test_a_bearer_where_the_app_reads_its_own_header(express: str) -> None:
    with closing(open_auth(settings(express, auth=JWT))) as session:
        refused = probe.token_accepted(session, "/api/jwt/me")
    assert not refused.ok
    assert refused.cause.startswith("/api/jwt/me refuses the fresh token: 401 Unauthorized"), refused.cause
    assert "(sent as Bearer in the Authorization header: " in refused.cause
    assert "check auth.scheme / auth.token_header" in refused.cause


def test_a_websocket_behind_the_session_cookie(pytester: pytest.Pytester, express: str) -> None:
    """ws's express-session pattern: the upgrade is let through only with a logged-in session's cookie, which the
    sweep's `ws` fixture carries when websocket_token says the socket takes the login's credential."""
    config = f"""
        backend_url = "{express}"
        health_path = ""
        websocket_url = "{ws_url(express, '/private')}"
        websocket_token = "header"
        timeout = 3
        [auth]
        login_path = "/api/auth/login"
        style = "json"
        session = "cookie"
        username = "smoke"
        password = "${{APP_PASSWORD}}"
    """
    records = sweep(pytester, config, "ws.handshake or ws.ping", SECRETS)
    assert outcomes(records) == {"ws.handshake": "passed", "ws.ping": "passed"}, records
    anonymous = open_ws(settings(express, websocket_url=ws_url(express, "/private")))
    assert anonymous.first is not None and anonymous.first.status == 401
