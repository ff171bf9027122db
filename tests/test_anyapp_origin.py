"""A credential is bound to the origin of backend_url (scheme, host, port), whatever its kind (a token in
Authorization or a header of its own, a session cookie, a static token): one request model, `Credential.carried`,
decides what each request carries. Tested as classes: every URL shape against every credential kind; every way a
login or probe path can leave the origin refused by the config; a redirect to another port or host of the same
machine (httpx's cookie jar ignores ports) hears no credential; the wrong password's login never carries the
right login's session."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from leakcheck import answer, body_of
from servers import serving
from test_secrets_redirects import Listener

from pytest_opscheck.config import ConfigError, settings_from_table
from pytest_opscheck.probes.diagnosis import auth as probe
from pytest_opscheck.probes.resource.auth import open_auth
from pytest_opscheck.probes.transport.web import Credential, bound_to

TOKEN = f"PLANTED-tok-{secrets.token_hex(12)}"
SESSION = f"PLANTED-sid-{secrets.token_hex(12)}"
PASSWORD = f"PLANTED-pw-{secrets.token_hex(8)}"


# --- the request model: which URL may carry which credential --------------------------------------------------


KINDS = {
    "bearer": Credential(frozenset(), headers=(("Authorization", f"Bearer {TOKEN}"),)),
    "own header": Credential(frozenset(), headers=(("X-Access-Token", TOKEN),)),
    "session": Credential(frozenset(), cookies=(("sessionid", SESSION),), csrf=("X-CSRFToken", "c" * 32)),
}
# (URL, carried for a credential bound to http://api.example:8000, carried when it was obtained over https at
# https://api.example:8443)
URLS = [
    ("http://api.example:8000/me", True, False),
    ("http://API.example:8000/me?x=1", True, False),
    ("ws://api.example:8000/socket", True, False),
    ("http://api.example:8001/me", False, False),  # another port of the same host
    ("http://api.example/me", False, False),  # port 80
    ("https://api.example:8000/me", False, False),  # another scheme
    ("http://other.example:8000/me", False, False),
    ("http://api.example.evil:8000/me", False, False),
    ("https://api.example:8443/me", False, True),
    ("wss://api.example:8443/socket", False, True),
    ("ws://api.example:8443/socket", False, False),  # obtained over https: never in clear text
    ("http://api.example:8443/me", False, False),
]


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize(("url", "plain", "tls"), URLS)
def test_a_credential_goes_only_to_its_origin(kind: str, url: str, plain: bool, tls: bool) -> None:
    for base, expected in (("http://api.example:8000", plain), ("https://api.example:8443", tls)):
        credential = Credential(bound_to(base).origins, KINDS[kind].headers, KINDS[kind].cookies, KINDS[kind].csrf,
                                secure=base.startswith("https"))
        carried = credential.carried(url, "POST")
        text = json.dumps(carried)
        if expected:
            assert TOKEN in text or SESSION in text, (url, carried)
        else:
            assert carried == {}, (base, url, carried)


def test_the_csrf_token_rides_only_on_unsafe_methods() -> None:
    credential = Credential(bound_to("http://api.example").origins, cookies=(("sessionid", SESSION),),
                            csrf=("X-CSRFToken", "c" * 32))
    assert "X-CSRFToken" not in credential.carried("http://api.example/me", "GET")
    assert credential.carried("http://api.example/me", "DELETE")["X-CSRFToken"] == "c" * 32


# --- the config refuses what would send a credential elsewhere ------------------------------------------------


ELSEWHERE = ["http://127.0.0.1:9001/login", "https://127.0.0.1:9000/login", "http://localhost:9000/login",
             "http://login.example:9000/login"]


def settings(auth: dict[str, Any], **top: Any) -> Any:
    table = {"backend_url": "http://127.0.0.1:9000", **top,
             "auth": {"username": "smoke", "password": "${PW}", **auth}}
    return settings_from_table(table, Path("opscheck.toml"), environ={"PW": PASSWORD})


@pytest.mark.parametrize("key", ["login_path", "probe_path"])
@pytest.mark.parametrize("url", ELSEWHERE)
def test_a_path_on_another_origin_is_a_usage_error_unless_auth_origin_names_it(key: str, url: str) -> None:
    auth = {"login_path": "/login", key: url}
    with pytest.raises(ConfigError) as refused:
        settings(auth)
    message = str(refused.value)
    assert f"auth.{key}: " in message and "is not backend_url's origin (http://127.0.0.1:9000)" in message
    assert "auth.origin" in message and "\n" not in message
    origin = url.rsplit("/", 1)[0]
    assert settings({**auth, "origin": origin}).auth is not None  # named: accepted
    assert settings({"login_path": "/login", key: "http://127.0.0.1:9000/x"}).auth is not None  # its own origin


def test_a_credential_obtained_over_https_is_never_configured_onto_ws() -> None:
    top = {"backend_url": "https://127.0.0.1:9443", "websocket_url": "ws://127.0.0.1:9443/live",
           "websocket_token": "header"}
    with pytest.raises(ConfigError, match="never sent over a ws:// WebSocket in clear text"):
        settings({"login_path": "/login"}, **top)
    assert settings({"login_path": "/login"}, **{**top, "websocket_url": "wss://127.0.0.1:9443/live"}).auth


# --- at run time: redirects to another port or host of the same machine ---------------------------------------


class Backend:
    """A backend whose login answers with a token and a session cookie, and whose probe path redirects (307) to
    `elsewhere`; every login request's Cookie header is kept."""

    def __init__(self) -> None:
        self.elsewhere = ""
        self.login_cookies: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if scope["path"] == "/login":
            body = json.loads(await body_of(receive) or b"{}")
            self.login_cookies.append(headers.get("cookie", ""))
            if body.get("password") != PASSWORD:
                await answer(send, 401, '{"detail": "bad credentials"}', kind="application/json")
                return
            await answer(send, 200, json.dumps({"access_token": TOKEN}), kind="application/json",
                         headers={"Set-Cookie": f"sid={SESSION}; Path=/; HttpOnly"})
        elif scope["path"] == "/token-scheme":  # the app: Authorization: Token <jwt>, no WWW-Authenticate
            if headers.get("authorization", "") == f"Token {TOKEN}":
                await answer(send, 200, "{}", kind="application/json")
            else:
                await answer(send, 401, '{"errors":["unsupported authorization type"]}', kind="application/json")
        elif scope["path"] == "/me" and self.elsewhere:
            await answer(send, 307, headers={"Location": f"{self.elsewhere}/me"})
        elif scope["path"] == "/me":
            ok = SESSION in headers.get("cookie", "") or TOKEN in headers.get("authorization", "")
            await answer(send, 200 if ok else 401, "{}", kind="application/json")
        else:
            await answer(send, 200, "{}", kind="application/json")


@pytest.fixture(scope="module")
def backend() -> Iterator[tuple[Backend, str]]:
    app = Backend()
    with serving(app) as server:
        yield app, server.url


@pytest.fixture
def listener() -> Iterator[Listener]:
    heard = Listener()
    yield heard
    heard.close()


CREDENTIALS = {
    "bearer token": {"style": "json"},
    "token in a header": {"style": "json", "token_header": "X-Access-Token"},
    "session cookie": {"style": "json", "session": "cookie"},
    "static token": {"style": "static", "token": "${PW}", "username": None, "password": None},
}


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize("kind", sorted(CREDENTIALS))
def test_a_redirect_to_another_port_or_host_hears_no_credential(
    backend: tuple[Backend, str], listener: Listener, kind: str, host: str
) -> None:
    app, url = backend
    elsewhere = f"http://{host}:{listener.port}"
    app.elsewhere = elsewhere
    auth = {k: v for k, v in {"login_path": "/login", "probe_path": "/me", **CREDENTIALS[kind]}.items() if v}
    if kind == "static token":
        auth.pop("login_path")
    table = {"backend_url": url, "frontend_url": elsewhere, "timeout": 2.0, "auth": {
        "username": "smoke", "password": "${PW}", **auth}}
    if kind == "static token":
        del table["auth"]["username"], table["auth"]["password"]
    config = settings_from_table(table, Path("opscheck.toml"), environ={"PW": PASSWORD})
    try:
        with closing(open_auth(config)) as session:
            finding = probe.token_accepted(session, "/me")
    finally:
        app.elsewhere = ""
    assert not finding.ok  # the other origin, asked without the credential, refuses
    assert listener.heard, "the configured other origin was asked (a redirect between allowed origins is followed)"
    for request in listener.heard:
        head = request.lower()
        assert b"authorization" not in head and b"cookie" not in head and b"x-access-token" not in head, request
        assert TOKEN.encode() not in request and SESSION.encode() not in request and PASSWORD.encode() not in request


def test_the_wrong_password_never_carries_the_right_session(backend: tuple[Backend, str]) -> None:
    app, url = backend
    app.login_cookies.clear()
    table = {"backend_url": url, "timeout": 2.0, "auth": {"login_path": "/login", "style": "json", "session": "cookie",
                                                          "username": "smoke", "password": "${PW}"}}
    config = settings_from_table(table, Path("opscheck.toml"), environ={"PW": PASSWORD})
    with closing(open_auth(config)) as session:
        assert session.credential.cookies == (("sid", SESSION),)
        finding = probe.rejects_bad_password(session, None)
    assert finding.ok, finding
    assert app.login_cookies == ["", ""], app.login_cookies  # the right login, then the wrong one: no cookie either


@pytest.mark.parametrize(("login", "ws", "sent"), [
    ("https://127.0.0.1:9443", "ws://127.0.0.1:9443/live", False),  # obtained over TLS: never in clear text
    ("https://127.0.0.1:9443", "wss://127.0.0.1:9443/live", True),
    ("http://127.0.0.1:9000", "ws://127.0.0.1:9000/live", True),
    ("http://127.0.0.1:9000", "ws://127.0.0.1:9001/live", True),  # another port: websocket_token says it takes it
])
@pytest.mark.parametrize("mode", ["header", "query"])
def test_a_websocket_gets_the_token_only_as_the_credential_allows(login: str, ws: str, sent: bool, mode: str) -> None:
    from pytest_opscheck.probes.resource.websocket import WebSocketTarget

    target = WebSocketTarget(ws, 2.0, None, token_in=mode, token_mode=mode, blank=bound_to(login), scheme="Token")
    carrying = target.with_token(TOKEN)
    assert (carrying.sent_token == TOKEN) is sent
    headers = carrying.auth_headers()
    assert (headers == {"Authorization": f"Token {TOKEN}"}) is sent
    if not sent:
        assert headers == {} and carrying.sent_token is None


@pytest.mark.parametrize(("scheme", "ok"), [(None, False), ("Token", True)])
def test_a_refused_scheme_is_said_before_the_signing_secret(backend: tuple[Backend, str], scheme: str | None,
                                                            ok: bool) -> None:
    _, url = backend
    auth = {"login_path": "/login", "style": "json", "username": "smoke", "password": "${PW}", "scheme": scheme}
    table = {"backend_url": url, "timeout": 2.0, "auth": {k: v for k, v in auth.items() if v}}
    config = settings_from_table(table, Path("opscheck.toml"), environ={"PW": PASSWORD})
    with closing(open_auth(config)) as session:
        finding = probe.token_accepted(session, "/token-scheme")
    assert finding.ok is ok
    if not ok:
        assert finding.cause == ('/token-scheme refuses the fresh token: 401 Unauthorized, it says "unsupported '
                                 'authorization type" (sent as Bearer in the Authorization header: a scheme or header '
                                 'it does not take? check auth.scheme / auth.token_header; else the secret that signs '
                                 'tokens differs from the one that checks them, or the token is expired)')


def test_a_login_on_the_origin_auth_origin_names(backend: tuple[Backend, str]) -> None:
    """A login on an auth server of its own (auth.origin names it): the password goes there, the token it gives
    goes to the backend, and both origins are the credential's."""
    api, api_url = backend
    issuer = Backend()
    with serving(issuer) as auth_server:
        table = {"backend_url": api_url, "timeout": 2.0, "auth": {
            "login_path": f"{auth_server.url}/login", "style": "json", "username": "smoke", "password": "${PW}",
            "origin": auth_server.url, "probe_path": "/me"}}
        config = settings_from_table(table, Path("opscheck.toml"), environ={"PW": PASSWORD})
        api.login_cookies.clear()
        with closing(open_auth(config)) as session:
            assert probe.login(session).ok
            accepted = probe.token_accepted(session, "/me")
    assert accepted.ok, accepted
    assert issuer.login_cookies == [""] and api.login_cookies == []  # the password went to the auth server only
