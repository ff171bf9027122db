"""A cookie session as Flask-Login keeps it (tests/anyapp/flask_app.py, one server for the module): the right
password's redirect sets the session cookie and the probe path accepts it; a wrong password is sent back to the
login page (with a session cookie of its own, for the flashed message) and is a refusal, never a login; a form
without its fields is a malformed request naming them; the backend failing behind the login is a server error;
an anonymous probe is redirected to the login (refused)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from anyapp.flask_app import flask_server

from pytest_opscheck.config import settings_from_table
from pytest_opscheck.probes.diagnosis import auth as probe
from pytest_opscheck.probes.resource.auth import open_auth
from pytest_opscheck.probes.resource.site import Site

pytest.importorskip("flask_login", reason="Flask-Login is a test dependency: pip install -e '.[test]'")

PASSWORD = "PLANTED-flask-pw-61c0"
FAULTS: set[str] = set()
AUTH = {"login_path": "/login", "style": "form", "session": "cookie", "username": "smoke", "password": "${PW}",
        "probe_path": "/api/me"}


@pytest.fixture(scope="module")
def flask() -> Iterator[str]:
    with flask_server(PASSWORD, FAULTS) as url:
        yield url


def settings(url: str, password: str = PASSWORD, **changes: Any) -> Any:
    table = {"backend_url": url, "timeout": 2.0, "auth": {**AUTH, **changes}}
    return settings_from_table(table, Path("opscheck.toml"), environ={"PW": password})


def test_right_password(flask: str) -> None:
    with closing(open_auth(settings(flask))) as session:
        login = probe.login(session)
        assert login.ok, login
        assert login.evidence["login"].startswith("POST /login → 302 FOUND")
        assert probe.token_accepted(session, "/api/me").ok
        rejects = probe.rejects_bad_password(session, "/api/me")
        assert rejects.ok, rejects
        assert PASSWORD not in str(login.evidence)


def test_wrong_password_is_sent_back_to_the_login(flask: str) -> None:
    with closing(open_auth(settings(flask, password="PLANTED-not-it"))) as session:
        finding = probe.login(session)
    assert finding.cause == ("login /login refused the smoke account smoke: 302 FOUND, redirected back to the login "
                             "page (wrong password, or the account is missing or inactive)")


def test_malformed_form(flask: str) -> None:
    with closing(open_auth(settings(flask, username_field="email"))) as session:
        finding = probe.login(session)
    assert finding.cause.startswith("login /login: the login request does not match the backend: 400 BAD REQUEST, "
                                    "it says username: This field is required."), finding.cause
    assert 'set auth.username_field to "username"' in finding.cause


def test_backend_failing_behind_the_login(flask: str) -> None:
    FAULTS.add("db")
    try:
        with closing(open_auth(settings(flask))) as session:
            finding = probe.login(session)
    finally:
        FAULTS.discard("db")
    assert finding.cause == "login /login fails with a server error: 500 INTERNAL SERVER ERROR"


def test_anonymous_probe_is_redirected_to_the_login(flask: str) -> None:
    config = settings(flask)
    site = Site("backend", flask, config)
    try:
        assert probe.rejects_anonymous(site, "/api/me").ok
    finally:
        site.close()
