"""Logins and credentials as a real Django + Django REST framework app has them (tests/anyapp/django_app.py, one
server for the module): DRF's TokenAuthentication (`Authorization: Token`), Django's own session login behind
CsrfViewMiddleware, a RealWorld-style nested login body, a static API token. Each shape with the right password,
a wrong one, a request the backend finds malformed, and the backend failing behind the login (its users table
gone); API paths asked as the logged-in user (a 500 only a logged-in user gets fails; a public path opted out
passes anonymously); no health endpoint, and a wrong health path named as configuration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from anyapp.sweeps import django_server, fault, outcomes, placeholders, readme_config, sweep

from pytest_opscheck.config import settings_from_table
from pytest_opscheck.probes.diagnosis import auth as probe
from pytest_opscheck.probes.resource.auth import open_auth

pytest.importorskip("rest_framework", reason="Django REST framework is a test dependency: pip install -e '.[test]'")

PASSWORD = "PLANTED-django-pw-4d1e"
API_TOKEN = "PLANTED0d1a2b3c4d5e6f708192a3b4c5d6e7f8091a"  # DRF keys are 40 characters
SECRETS = (PASSWORD, API_TOKEN)
AUTH = "auth.login or auth.token_accepted or auth.rejects_bad_password"

SHAPES: dict[str, dict[str, Any]] = {
    # DRF's obtain_auth_token, presented with TokenAuthentication's own scheme.
    "drf-token": {"login_path": "/api-token-auth/", "style": "json", "username": "smoke", "token_field": "token",
                  "scheme": "Token", "probe_path": "/api/me/"},
    # Django's LoginView: a form, the CSRF cookie sent back as X-CSRFToken, the session cookie as the credential.
    "django-session": {"login_path": "/accounts/login/", "style": "form", "username": "smoke", "session": "cookie",
                       "csrf": {"cookie": "csrftoken", "header": "X-CSRFToken"}, "probe_path": "/api/me/"},
    # A RealWorld (Conduit) login: {"user": {"email", "password"}} answered by {"user": {"token"}}.
    "realworld": {"login_path": "/api/users/login", "style": "json", "username": "smoke@example.com",
                  "body": {"user": {"email": "{username}", "password": "{password}"}}, "token_field": "user.token",
                  "scheme": "Token", "probe_path": "/api/me/"},
}
# What each shape's broken request looks like (the config a user gets wrong first), and what the cause says.
MALFORMED: dict[str, tuple[dict[str, Any], str]] = {
    "drf-token": ({"username_field": "email"}, 'username: This field is required. (the backend asks for username: '
                                               'set auth.username_field to "username")'),
    "django-session": ({"csrf": None}, 'CSRF verification failed (the backend wants a CSRF token back: set auth.csrf'),
    "realworld": ({"body": None, "username_field": "email"},
                  "user: This field is required. (the backend asks for user"),
}


@pytest.fixture(scope="module")
def django(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with django_server(tmp_path_factory.mktemp("django"), PASSWORD, API_TOKEN) as url:
        yield url


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_PASSWORD", PASSWORD)
    monkeypatch.setenv("APP_API_TOKEN", API_TOKEN)


def toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def config(url: str, auth: dict[str, Any], **top: Any) -> str:
    lines = [f"backend_url = {toml(url)}", 'health_path = ""', "timeout = 3",
             *(f"{k} = {toml(v)}" for k, v in top.items()), "[auth]"]
    lines += [f"{k} = {toml(v)}" for k, v in auth.items() if v is not None]
    return "\n".join(lines) + "\n"


def shape(name: str, **changes: Any) -> dict[str, Any]:
    auth = {**SHAPES[name], "password": "${APP_PASSWORD}", **changes}
    return {k: v for k, v in auth.items() if v is not None}


def settings(url: str, auth: dict[str, Any], password: str = PASSWORD) -> Any:
    table = {"backend_url": url, "timeout": 3.0, "auth": auth}
    return settings_from_table(table, Path("opscheck.toml"), environ={"APP_PASSWORD": password,
                                                                      "APP_API_TOKEN": API_TOKEN})


# --- the README's quickstart, and each shape's right password --------------------------------------------------


HEALTHY = ("auth.login or auth.token_accepted or auth.rejects_bad_password or api.no_server_errors or api.latency "
           "or backend.health")


def test_readme_quickstart_sweeps_green(pytester: pytest.Pytester, django: str, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    """The README's Django + DRF config, as written: the token login, TokenAuthentication's scheme, API paths
    asked logged in (a public one anonymously), no health endpoint."""
    monkeypatch.setenv("OPSCHECK_USER", "smoke")
    monkeypatch.setenv("OPSCHECK_PASSWORD", PASSWORD)
    records = sweep(pytester, readme_config("django", django), HEALTHY, SECRETS, file="pyproject")
    found = outcomes(records)
    assert found.pop("backend.health_memory") == "skipped"  # no health endpoint, no memory figures to read
    assert set(found.values()) == {"passed"} and len(found) == 6, found
    probe_line = records["auth.token_accepted"]["evidence"]["probe"]
    assert probe_line.startswith("GET /api/me/ → 200 OK"), probe_line
    assert probe_line.endswith("(with the token as Token in the Authorization header)"), probe_line
    asked = records["api.no_server_errors"]["evidence"]["asked as"]
    assert asked == "logged in: /api/items/; anonymous: /api/tags/", asked
    assert "/api/items/  200 OK" in records["api.no_server_errors"]["evidence"]["answers"]
    assert records["api.latency"]["evidence"]["asked as"] == asked
    assert records["backend.health"]["evidence"]["root"].startswith("GET / → 404 Not Found")


@pytest.mark.parametrize("name", ["django-session", "realworld"])
def test_right_password_of_the_other_shapes(django: str, name: str) -> None:
    """Django's session login behind CSRF, and a RealWorld nested body (the token shape is swept above)."""
    with closing(open_auth(settings(django, shape(name)))) as session:
        login = probe.login(session)
        accepted = probe.token_accepted(session, "/api/me/")
        rejects = probe.rejects_bad_password(session, "/api/me/")
    assert login.ok and accepted.ok and rejects.ok, (login, accepted, rejects)
    how = ("the session cookie and X-CSRFToken" if name == "django-session"
           else "the token as Token in the Authorization header")
    assert accepted.evidence["probe"].endswith(f"(with {how})"), accepted.evidence


# --- each shape: wrong password, malformed request, backend failing behind the login ------------------------


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_wrong_password_is_a_refusal(django: str, name: str) -> None:
    with closing(open_auth(settings(django, shape(name), password="PLANTED-not-the-password"))) as session:
        finding = probe.login(session)
    assert not finding.ok
    assert finding.cause.startswith(f"login {SHAPES[name]['login_path']} refused the smoke account"), finding.cause
    assert finding.cause.endswith("(wrong password, or the account is missing or inactive)"), finding.cause


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_malformed_request_is_named_with_what_to_write(django: str, name: str) -> None:
    changes, says = MALFORMED[name]
    with closing(open_auth(settings(django, shape(name, **changes)))) as session:
        finding = probe.login(session)
    assert not finding.ok
    assert "the login request does not match the backend" in finding.cause, finding.cause
    assert says in finding.cause, finding.cause
    assert "wrong password" not in finding.cause


def test_a_nested_field_named_by_the_backend_gets_the_body_hint_not_a_circle(django: str) -> None:
    """RealWorld's login sent flat: whatever username_field the user tries next, the hint names auth.body."""
    for field in ("email", "user"):
        with closing(open_auth(settings(django, shape("realworld", body=None, username_field=field)))) as session:
            cause = probe.login(session).cause
        assert 'auth.body, a table with "{username}" and "{password}" where the backend expects them' in cause, cause


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_backend_failing_behind_the_login_is_a_server_error(django: str, name: str) -> None:
    with fault(django, "users"), closing(open_auth(settings(django, shape(name)))) as session:
        finding = probe.login(session)
    assert not finding.ok
    assert finding.cause.startswith(f"login {SHAPES[name]['login_path']} fails with a server error: 500"), \
        finding.cause


# --- the credential as the backend wants it -----------------------------------------------------------------


def test_static_token_sweep(pytester: pytest.Pytester, django: str) -> None:
    """A long-lived API token: no login to check, the token presented as TokenAuthentication wants it, API paths
    asked with it."""
    auth = {"style": "static", "token": "${APP_API_TOKEN}", "scheme": "Token", "probe_path": "/api/me/"}
    records = sweep(pytester, config(django, auth, api_paths=["/api/items/"]), AUTH + " or api.no_server_errors",
                    SECRETS)
    assert outcomes(records) == {"auth.login": "skipped", "auth.token_accepted": "passed",
                                 "auth.rejects_bad_password": "skipped", "api.no_server_errors": "passed"}, records
    assert records["api.no_server_errors"]["evidence"]["asked as"] == "logged in: /api/items/"


def test_static_token(django: str) -> None:
    auth = {"style": "static", "token": "${APP_API_TOKEN}", "scheme": "Token", "probe_path": "/api/me/"}
    with closing(open_auth(settings(django, auth))) as session:
        assert probe.token_accepted(session, "/api/me/").ok
        assert API_TOKEN in session.secrets
    revoked = settings_from_table({"backend_url": django, "timeout": 3.0, "auth": auth}, Path("opscheck.toml"),
                                  environ={"APP_API_TOKEN": "PLANTED0000000000000000000000000000000000"})
    with closing(open_auth(revoked)) as session:
        finding = probe.token_accepted(session, "/api/me/")
    assert not finding.ok
    assert finding.cause == ('/api/me/ refuses the fresh token: 401 Unauthorized, it says "Invalid token." (sent as '
                             'Token in the Authorization header: the token is revoked, expired, or not one this '
                             'backend issued)')


def test_the_wrong_password_login_never_carries_the_right_session(django: str) -> None:
    with closing(open_auth(settings(django, shape("django-session")))) as session:
        assert "sessionid" in dict(session.credential.cookies)
        finding = probe.rejects_bad_password(session, "/api/me/")
    assert finding.ok, finding
    assert session.blank.cookies == ()  # the wrong password starts from a credential that holds nothing


# --- API paths as the logged-in user, health ----------------------------------------------------------------


def test_a_500_only_users_get_and_a_wrong_health_path(pytester: pytest.Pytester, django: str) -> None:
    """Anonymous, the items path answers 401 before it reads its (dropped) table: only a logged-in request sees
    the 500. The health path the app does not have is named as configuration, the backend being up."""
    paths = ["/api/items/", {"path": "/api/tags/", "auth": False}]
    text = config(django, shape("drf-token"), api_paths=paths).replace('health_path = ""', 'health_path = "/health"')
    with fault(django, "items"):
        records = sweep(pytester, text, "api.no_server_errors or backend.health", SECRETS)
    record = records["api.no_server_errors"]
    assert record["outcome"] == "failed"
    assert record["message"] == "1 of 2 API path(s) fail: /api/items/ → 500 (logged in)", record["message"]
    health = records["backend.health"]
    assert health["outcome"] == "failed"
    assert health["message"].startswith("configuration: health_path /health answers 404 Not Found while the backend "
                                        "answers at its root (404 Not Found)"), health["message"]
    for check in records.values():
        assert not placeholders(check["resolution"]), check["resolution"]


def test_a_bearer_sent_to_token_authentication(pytester: pytest.Pytester, django: str) -> None:
    """The scheme the app does not take: auth.token_accepted names the one it asks for, and an API path that
    refuses the valid credential fails naming it (never a pass on a 401)."""
    text = config(django, shape("drf-token", scheme=None), api_paths=["/api/items/"])
    records = sweep(pytester, text, "auth.token_accepted or api.", SECRETS)
    record = records["auth.token_accepted"]
    assert record["outcome"] == "failed"
    assert record["message"] == ('/api/me/ refuses the fresh token: 401 Unauthorized: the backend asks for the Token '
                                 'scheme (WWW-Authenticate: Token): set auth.scheme = "Token"')
    api = records["api.no_server_errors"]
    assert api["outcome"] == "failed"
    assert api["message"] == ("1 of 1 API path(s) fail: /api/items/ refuses the smoke account's valid credential "
                              "(401 Unauthorized)")
    assert records["api.latency"]["outcome"] == "skipped"


def test_a_refused_login_is_not_blamed_on_a_wrong_health_path(
    pytester: pytest.Pytester, django: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_PASSWORD", "PLANTED-not-the-password")
    text = config(django, shape("drf-token")).replace('health_path = ""', 'health_path = "/health"')
    records = sweep(pytester, text, "auth.login or backend.health", SECRETS)
    assert records["backend.health"]["message"].startswith("configuration: health_path /health answers 404")
    assert records["auth.login"]["outcome"] == "failed"
    assert records["auth.login"]["caused_by"] is None, records["auth.login"]
