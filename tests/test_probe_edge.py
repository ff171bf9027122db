"""The edge probes (http, auth, websocket, smtp, tls) against real servers on 127.0.0.1, without pytester."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import (
    FRONTEND_ORIGIN,
    SMOKE_PASSWORD,
    SMOKE_USER,
    SMTP_PASSWORD,
    SMTP_USER,
    Faults,
    Frontend,
    Uvicorn,
    api_app,
    blackhole,
    make_certificates,
    make_jwt,
    raw_http_server,
    serving,
    smtp_server,
    static_app,
    websocket_server,
)

from pytest_opscheck.config import Settings, settings_from_table
from pytest_opscheck.probes.diagnosis import api as api_probe
from pytest_opscheck.probes.diagnosis import auth, backend, health_memory, tls, websocket
from pytest_opscheck.probes.resource.auth import open_auth
from pytest_opscheck.probes.resource.site import open_backend, open_frontend
from pytest_opscheck.probes.resource.smtp import open_smtp
from pytest_opscheck.probes.resource.websocket import open_ws
from pytest_opscheck.probes.result import TargetUnreachable
from pytest_opscheck.probes.transport.tls import client_context


def settings(tmp_path: Path, **table: Any) -> Settings:
    environ = {"OPSCHECK_PASSWORD": SMOKE_PASSWORD, "SMTP_PASSWORD": SMTP_PASSWORD}
    return settings_from_table({"timeout": 1.0, **table}, tmp_path / "opscheck.toml", environ=environ)


@pytest.fixture(scope="module")
def faults() -> Faults:
    return Faults()


@pytest.fixture(autouse=True)
def healthy(faults: Faults) -> None:
    faults.active.clear()


@pytest.fixture(scope="module")
def api(faults: Faults) -> Iterator[Uvicorn]:
    with serving(api_app(faults)) as server:
        yield server


@pytest.fixture(scope="module")
def frontend_state() -> Frontend:
    return Frontend()


@pytest.fixture(scope="module")
def frontend(frontend_state: Frontend) -> Iterator[Uvicorn]:
    with serving(static_app(frontend_state)) as server:
        yield server


# --- http --------------------------------------------------------------------------------------


def test_backend_opener_reads_health_once(tmp_path: Path, api: Uvicorn, faults: Faults) -> None:
    site = open_backend(settings(tmp_path, backend_url=api.url, health_path="/health"))
    try:
        assert site.first is not None and site.first.status == 200
        assert backend.health(site.first).ok
        faults.active.add("health_degraded")
        assert backend.health(site.first).ok, "the first answer is the sweep's: read once"
        degraded = backend.health(site.get("/health"))
        assert not degraded.ok
        assert degraded.cause == "health /health reports status 'degraded' (database: down)"
    finally:
        site.close()


def test_fastapi_health_true_and_503(tmp_path: Path, api: Uvicorn, faults: Faults) -> None:
    config = settings(tmp_path, backend_url=api.url, health_path="/api/v1/utils/health-check/")
    site = open_backend(config)
    try:
        assert site.first is not None and backend.health(site.first).ok
        faults.active.add("health_down")
        finding = backend.health(site.get(config.health_path))
        assert finding.cause == "health /api/v1/utils/health-check/ answers 503 Service Unavailable"
    finally:
        site.close()


def test_unreachable_backend_is_named(tmp_path: Path) -> None:
    with blackhole() as silent:
        started = time.monotonic()
        with pytest.raises(TargetUnreachable) as timed_out:
            open_backend(settings(tmp_path, backend_url=f"http://127.0.0.1:{silent}"))
        assert time.monotonic() - started < 5
    assert timed_out.value.cause == f"timed out after 1 s waiting for http://127.0.0.1:{silent}/health"
    port = free_tcp_port()
    with pytest.raises(TargetUnreachable) as refused:
        open_backend(settings(tmp_path, backend_url=f"http://127.0.0.1:{port}"))
    assert (refused.value.target, refused.value.cause) == ("backend", f"connection refused by 127.0.0.1:{port}")


def free_tcp_port() -> int:
    from realservices import free_port

    return free_port()


def test_redirects_stay_on_the_configured_hosts(tmp_path: Path, frontend: Uvicorn) -> None:
    site = open_frontend(settings(tmp_path, frontend_url=frontend.url))
    try:
        answer = site.get("/old")
        assert answer.status == 302, "a redirect off the configured hosts is not followed"
        assert answer.headers["location"] == "http://example.invalid/"
    finally:
        site.close()


def test_memory_figures() -> None:
    read = health_memory.read_section
    assert read("m", {"heapUsed": 50, "heapTotal": 200}).unreadable  # V8's reserved heap is no limit
    assert (read("m", {"usage_percent": "91.5%"}).percent, read("m", {"usage_percent": "91.5%"}).how) == (
        91.5, "usage_percent = 91.5%")
    assert read("m", {"used": "512MB", "total": "1GB"}).percent == pytest.approx(51.2)
    assert read("m", {"status": "ok"}).percent is None


def test_gauge_sums_labelled_samples() -> None:
    text = (
        "# TYPE websocket_connections gauge\n"
        'websocket_connections{room="a"} 3\n'
        'websocket_connections{room="b"} 4\n'
    )
    assert api_probe.gauge(text, "websocket_connections") == (
        7.0, ['websocket_connections{room="a"} 3', 'websocket_connections{room="b"} 4']
    )
    assert api_probe.gauge("websocket_connections_total 9\n", "websocket_connections") is None
    assert api_probe.gauge("websocket_connections 12 1700000000\n", "websocket_connections") == (
        12.0, ["websocket_connections 12 1700000000"]
    )


def test_latency_timings_split_connect_and_first_byte(tmp_path: Path, api: Uvicorn, faults: Faults) -> None:
    faults.active.add("slow")
    site = open_backend(settings(tmp_path, backend_url=api.url, timeout=3.0))
    try:
        samples = api_probe.api_samples(site, ["/api/v1/items/", "/api/v1/users/me"])
        finding = api_probe.latency(samples, 0.5)
    finally:
        site.close()
    assert not finding.ok
    assert finding.cause.startswith("1 API path(s) slower than 0.5 s: /api/v1/items/ 1.")
    rows = finding.evidence["timings"].splitlines()
    assert rows[0].split() == ["path", "status", "connect", "first", "byte", "total", "error"]
    assert all(" ms" in row for row in rows[1:]), "connect is measured on a fresh connection (Connection: close)"


# --- auth --------------------------------------------------------------------------------------


def fastapi_auth(tmp_path: Path, url: str) -> Settings:
    return settings(tmp_path, backend_url=url, auth={
        "login_path": "/api/v1/login/access-token", "style": "form", "username": SMOKE_USER,
        "password": "${OPSCHECK_PASSWORD}", "probe_path": "/api/v1/users/me",
    })


def test_form_login_and_token(tmp_path: Path, api: Uvicorn) -> None:
    session = open_auth(fastapi_auth(tmp_path, api.url))
    try:
        finding = auth.login(session)
        assert finding.ok, finding
        assert finding.evidence["token"].startswith("JWT, expires in 60 min")
        assert auth.token_accepted(session, "/api/v1/users/me").ok
        assert auth.rejects_bad_password(session).ok
        assert SMOKE_PASSWORD not in repr(session) and session.token not in repr(session.login)
    finally:
        session.close()


def test_login_wrong_style_is_named(tmp_path: Path, api: Uvicorn) -> None:
    config = settings(tmp_path, backend_url=api.url, auth={
        "login_path": "/api/v1/login/access-token", "style": "json", "username": SMOKE_USER,
        "password": "${OPSCHECK_PASSWORD}",
    })
    session = open_auth(config)
    try:
        assert session.login.token is None
        with pytest.raises(TargetUnreachable):
            session.token  # noqa: B018
    finally:
        session.close()


def test_token_lifetime_warnings() -> None:
    now = time.time()
    assert auth.token_lifetime(make_jwt("x", 3600), now)[1] is None
    assert "already expired" in str(auth.token_lifetime(make_jwt("x", -600), now)[1])
    assert "lives 90 days" in str(auth.token_lifetime(make_jwt("x", 90 * 86400), now)[1])
    assert auth.token_lifetime("opaque-token-value", now) == ("opaque token (18 characters, not a JWT)", None)


@pytest.mark.parametrize(
    ("env", "cause"),
    [
        ({}, "no token-signing secret in the backend's environment: none of SECRET_KEY, JWT_SECRET is set"),
        ({"SECRET_KEY": "changethis"}, "SECRET_KEY holds a placeholder value"),
        ({"JWT_SECRET": "short-PLANTED"}, "JWT_SECRET is too short (13 characters, at least 32)"),
        ({"JWT_SECRET": "a" * 40}, "JWT_SECRET is too uniform (1 distinct characters)"),
        ({"SECRET_KEY": "  "}, "SECRET_KEY is empty"),
    ],
)
def test_secret_strength_fails(env: dict[str, str], cause: str) -> None:
    finding = auth.secret_strength(env)
    assert (finding.ok, finding.cause) == (False, cause)
    assert all(value not in str(finding.evidence) for value in env.values() if value.strip())


def test_secret_strength_passes() -> None:
    finding = auth.secret_strength({"SECRET_KEY": "9f2c4e1a7b3d5f6e8a0c2e4f6a8b0d1c3e5f7a9b"})
    assert finding.ok
    assert "9f2c" not in str(finding.evidence)


def test_cors_preflight(tmp_path: Path, api: Uvicorn, faults: Faults) -> None:
    site = open_backend(settings(tmp_path, backend_url=api.url))
    try:
        assert auth.cors_preflight(site, "/api/auth/login", FRONTEND_ORIGIN).ok
        refused = auth.cors_preflight(site, "/api/auth/login", "http://evil.example")
        assert refused.cause == "CORS preflight from http://evil.example refused: 400 Bad Request"
    finally:
        site.close()


# --- websocket ---------------------------------------------------------------------------------


def test_websocket_handshake_and_ping(tmp_path: Path) -> None:
    with websocket_server() as url:
        target = open_ws(settings(tmp_path, websocket_url=url))
        assert target.first is not None and target.first.ok
        assert websocket.handshake(target).ok
        finding = websocket.ping(target)
        assert finding.ok and finding.evidence["ping"].startswith("pong after")


@pytest.mark.parametrize(
    ("mode", "cause"),
    [
        ("404", "no WebSocket endpoint at /realtime: 404 Not Found"),
        ("426", "426 Upgrade Required at /realtime: the server saw no Upgrade header"),
        ("200", "200 OK instead of 101 Switching Protocols at /realtime"),
    ],
)
def test_websocket_refusals_are_named(tmp_path: Path, mode: str, cause: str) -> None:
    with raw_http_server(mode) as port:
        target = open_ws(settings(tmp_path, websocket_url=f"ws://127.0.0.1:{port}/realtime"))
    finding = websocket.handshake(target)
    assert not finding.ok and finding.cause.startswith(cause)


def test_websocket_without_pong(tmp_path: Path) -> None:
    with raw_http_server("mute") as port:
        target = open_ws(settings(tmp_path, websocket_url=f"ws://127.0.0.1:{port}/realtime"))
        assert websocket.handshake(target).ok
        finding = websocket.ping(target)
    assert finding.cause.startswith("no pong within 1 s")


def test_websocket_refused(tmp_path: Path) -> None:
    port = free_tcp_port()
    with pytest.raises(TargetUnreachable) as refused:
        open_ws(settings(tmp_path, websocket_url=f"ws://127.0.0.1:{port}/realtime"))
    assert refused.value.cause == f"connection refused by 127.0.0.1:{port}"


# --- smtp --------------------------------------------------------------------------------------


def smtp_settings(tmp_path: Path, port: int, ca_file: str | None = None, **extra: Any) -> Settings:
    smtp = {"host": "127.0.0.1", "port": port, "sender": "app@example.com", **extra}
    return settings(tmp_path, smtp=smtp, **({"ca_file": ca_file} if ca_file else {}))


def test_smtp_plain_session(tmp_path: Path) -> None:
    with smtp_server() as port:
        finding = open_smtp(smtp_settings(tmp_path, port))
    assert finding.ok
    steps = [row.split()[0] for row in finding.evidence["session"].splitlines()[1:]]
    assert steps == ["connect", "EHLO", "QUIT"]


def test_smtp_starttls_and_auth(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs")
    with smtp_server(certs.server_context, auth=True) as port:
        config = smtp_settings(tmp_path, port, starttls=True, user=SMTP_USER, password="${SMTP_PASSWORD}")
        ok = open_smtp(dataclasses.replace(config, ca_file=str(certs.ca_file)))
        assert [row.split()[0] for row in ok.evidence["session"].splitlines()[1:]] == [
            "connect", "EHLO", "STARTTLS", "EHLO", "AUTH", "QUIT"
        ]
        with pytest.raises(TargetUnreachable) as untrusted:
            open_smtp(config)
        assert untrusted.value.cause.startswith(
            f"TLS failure at STARTTLS with 127.0.0.1:{port}: certificate not trusted"
        )
        wrong = smtp_settings(tmp_path, port, user=SMTP_USER, password="${OPSCHECK_PASSWORD}")
        with pytest.raises(TargetUnreachable) as bad:
            open_smtp(wrong)
        assert bad.value.cause == f"authentication failed for SMTP user mailer on 127.0.0.1:{port} (535)"


def test_smtp_implicit_tls(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs")
    with smtp_server(certs.server_context, implicit_tls=True) as port:
        finding = open_smtp(smtp_settings(tmp_path, port, ssl=True, ca_file=str(certs.ca_file)))
    assert finding.ok
    assert finding.evidence["session"].splitlines()[1].startswith("connect (implicit TLS)")


def test_smtp_refused_and_silent(tmp_path: Path) -> None:
    port = free_tcp_port()
    with pytest.raises(TargetUnreachable) as refused:
        open_smtp(smtp_settings(tmp_path, port))
    assert refused.value.cause == f"connection refused by 127.0.0.1:{port}"
    with blackhole() as silent, pytest.raises(TargetUnreachable) as timed_out:
        open_smtp(smtp_settings(tmp_path, silent))
    assert timed_out.value.cause == (
        f"timed out after 1 s connecting to or waiting for the greeting of 127.0.0.1:{silent}"
    )


# --- tls ---------------------------------------------------------------------------------------


def test_cert_expiry(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs", days=3)
    with serving(static_app(Frontend()), certs.cert_file, certs.key_file) as server:
        trusted = settings(tmp_path, frontend_url=server.url, ca_file=str(certs.ca_file))
        assert tls.cert_expiry(trusted, 2).ok
        soon = tls.cert_expiry(trusted, 14)
        assert soon.cause.startswith(f"frontend_url 127.0.0.1:{server.port}: certificate expires in 3.0 days (< 14)")
        untrusted = tls.cert_expiry(settings(tmp_path, frontend_url=server.url), 2)
        assert "certificate not trusted" in untrusted.cause


def test_one_client_context_per_ca_file(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs", days=3)
    default = client_context(settings(tmp_path))
    assert client_context(settings(tmp_path, backend_url="http://127.0.0.1:1")) is default
    own_ca = client_context(settings(tmp_path, ca_file=str(certs.ca_file)))
    assert own_ca is not default
    assert len(own_ca.get_ca_certs()) == len(default.get_ca_certs()) + 1
