"""The edge checks (backend, frontend, api, auth, ws, email, tls) run as a user runs them, against real
servers on 127.0.0.1: each fails on its fault and passes on the healthy server; no secret is shown."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from realservices import free_port
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
    make_certificates,
    raw_http_server,
    serving,
    smtp_server,
    static_app,
)


@pytest.fixture(scope="module")
def faults() -> Faults:
    return Faults()


@pytest.fixture(scope="module")
def site() -> Frontend:
    return Frontend()


@pytest.fixture(autouse=True)
def healthy(faults: Faults, site: Frontend, monkeypatch: pytest.MonkeyPatch) -> None:
    faults.active.clear()
    site.spa_fallback, site.broken = True, False
    site.missing.clear()
    monkeypatch.setenv("OPSCHECK_PASSWORD", SMOKE_PASSWORD)
    monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)


@pytest.fixture(scope="module")
def api(faults: Faults) -> Iterator[Uvicorn]:
    with serving(api_app(faults)) as server:
        yield server


@pytest.fixture(scope="module")
def frontend(site: Frontend) -> Iterator[Uvicorn]:
    with serving(static_app(site)) as server:
        yield server


def fastapi(api: Uvicorn, frontend: Uvicorn) -> str:
    """The config a user of the FastAPI + Alembic runbook writes."""
    return f"""
        backend_url = "{api.url}"
        health_path = "/api/v1/utils/health-check/"
        frontend_url = "{frontend.url}"
        frontend_routes = ["/", "/login", "/settings"]
        api_paths = ["/api/v1/items/"]
        slow_seconds = 0.5
        timeout = 3
        [auth]
        login_path = "/api/v1/login/access-token"
        style = "form"
        username = "{SMOKE_USER}"
        password = "${{OPSCHECK_PASSWORD}}"
        probe_path = "/api/v1/users/me"
        origin = "{FRONTEND_ORIGIN}"
    """


def node(api: Uvicorn, websocket_url: str | None = None) -> str:
    """The config a user of the Node + Prisma runbook writes."""
    ws_port = api.url.rsplit(":", 1)[1]
    return f"""
        backend_url = "{api.url}"
        health_path = "/health"
        metrics_path = "/metrics"
        websocket_url = "{websocket_url or f'ws://127.0.0.1:{ws_port}/realtime'}"
        websocket_token = "header"
        api_paths = ["/api/suites"]
        timeout = 2
        [auth]
        login_path = "/api/auth/login"
        style = "json"
        username = "{SMOKE_USER}"
        password = "${{OPSCHECK_PASSWORD}}"
        token_field = "token"
        probe_path = "/api/auth/me"
        origin = "{FRONTEND_ORIGIN}"
    """


# Plugins that only slow an in-process run down (each run re-imports what it imports).
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:pytest11.testinfra",
         "-p", "no:anyio")


def sweep(pytester: pytest.Pytester, config: str, select: str, faults: Faults | None = None) -> dict[str, Any]:
    """Run the checks matching `select` against `config`; the records by check id. No secret in any output."""
    pytester.makefile(".toml", opscheck=textwrap.dedent(config))
    result = pytester.runpytest("--opscheck", *QUIET, "-k", select, "--opscheck-json", "out.json")
    out = pytester.path / "out.json"
    html = pytester.path / "opscheck-report.html"
    assert out.exists() and html.exists(), result.stdout.str()
    every_output = result.stdout.str() + result.stderr.str() + out.read_text() + html.read_text()
    for secret in (SMOKE_PASSWORD, SMTP_PASSWORD, *(faults.tokens if faults else [])):
        assert secret not in every_output, f"secret shown: {secret[:6]}..."
    return {c["id"]: c for c in json.loads(out.read_text())["checks"]}


def outcomes(records: dict[str, Any]) -> dict[str, str]:
    return {check: record["outcome"] for check, record in records.items()}


EDGE = "backend. or frontend. or api. or auth. or ws. or email. or tls."


def test_fastapi_stack_healthy(pytester: pytest.Pytester, api: Uvicorn, frontend: Uvicorn, faults: Faults) -> None:
    records = sweep(pytester, fastapi(api, frontend), EDGE, faults)
    assert outcomes(records) == {
        "backend.health": "passed",
        "backend.health_memory": "skipped",
        "frontend.root": "passed",
        "frontend.spa_routes": "passed",
        "frontend.assets": "passed",
        "api.no_server_errors": "passed",
        "api.latency": "passed",
        "auth.secret_configured": "skipped",
        "auth.login": "passed",
        "auth.token_accepted": "passed",
        "auth.rejects_bad_password": "passed",
        "auth.rejects_anonymous": "passed",
        "auth.cors_preflight": "passed",
        "ws.handshake": "skipped",
        "ws.ping": "skipped",
        "ws.connections_gauge": "skipped",
        "email.configured": "skipped",
        "email.smtp_session": "skipped",
        "tls.cert_expiry": "skipped",
    }
    assert records["auth.secret_configured"]["message"] == "not configured: compose_project"
    assert records["ws.handshake"]["message"] == "not configured: websocket_url"
    assert records["backend.health_memory"]["message"] == (
        "the health JSON has no memory section at checks.memory"
    )


def test_node_stack_healthy(pytester: pytest.Pytester, api: Uvicorn, faults: Faults) -> None:
    records = sweep(pytester, node(api), "backend. or api. or auth. or ws.", faults)
    for check in ("backend.health", "backend.health_memory", "api.no_server_errors", "auth.login",
                  "auth.token_accepted", "auth.rejects_bad_password", "auth.rejects_anonymous",
                  "auth.cors_preflight", "ws.handshake", "ws.ping", "ws.connections_gauge"):
        assert records[check]["outcome"] == "passed", records[check]


@pytest.mark.parametrize(
    ("stack", "fault", "check", "message"),
    [
        ("fastapi", "health_down", "backend.health",
         "health /api/v1/utils/health-check/ answers 503 Service Unavailable"),
        ("node", "health_degraded", "backend.health", "health /health reports status 'degraded' (database: down)"),
        ("fastapi", "server_errors", "api.no_server_errors", "1 of 1 API path(s) fail: /api/v1/items/ → 500"),
        ("fastapi", "slow", "api.latency", "1 API path(s) slower than 0.5 s: /api/v1/items/ 1."),
        ("fastapi", "login_broken", "auth.login",
         "login /api/v1/login/access-token fails with a server error: 500 Internal Server Error"),
        ("fastapi", "login_any_password", "auth.rejects_bad_password",
         "SECURITY: login accepts a wrong password for smoke@example.com: 200 OK"),
        ("fastapi", "anonymous_allowed", "auth.rejects_anonymous",
         "SECURITY: /api/v1/users/me answers 200 OK to a request without a token"),
        ("fastapi", "no_cors", "auth.cors_preflight",
         f"CORS preflight from {FRONTEND_ORIGIN} refused: 400 Bad Request"),
        ("fastapi", "token_rejected", "auth.token_accepted", "/api/v1/users/me refuses the fresh token: 401"),
        ("node", "token_rejected", "ws.handshake", "handshake refused: 403 Forbidden (the token was refused)"),
        ("node", "ws_leak", "ws.connections_gauge",
         "5000 open WebSocket connections (websocket_connections) over the limit of 1000: a connection leak"),
    ],
)
def test_backend_fault_fails_its_check(
    pytester: pytest.Pytester, api: Uvicorn, frontend: Uvicorn, faults: Faults,
    stack: str, fault: str, check: str, message: str,
) -> None:
    faults.active.add(fault)
    config = fastapi(api, frontend) if stack == "fastapi" else node(api)
    records = sweep(pytester, config, check, faults)
    assert records[check]["outcome"] == "failed", records[check]
    assert records[check]["message"].startswith(message), records[check]["message"]
    if check == "api.latency":
        header = records[check]["evidence"]["timings"].splitlines()[0]
        assert header.split() == ["path", "status", "connect", "first", "byte", "total", "error"]


def test_failed_login_is_the_root_cause(
    pytester: pytest.Pytester, api: Uvicorn, frontend: Uvicorn, faults: Faults
) -> None:
    faults.active.add("login_broken")
    records = sweep(pytester, fastapi(api, frontend), "auth.", faults)
    assert records["auth.token_accepted"]["outcome"] == "failed"
    assert records["auth.token_accepted"]["caused_by"] == "auth.login"
    assert records["auth.rejects_anonymous"]["outcome"] == "passed"


def test_expired_token_is_told(pytester: pytest.Pytester, api: Uvicorn, frontend: Uvicorn, faults: Faults) -> None:
    faults.active.add("token_expired")
    records = sweep(pytester, fastapi(api, frontend), "auth.token_accepted", faults)
    record = records["auth.token_accepted"]
    assert record["message"].startswith("/api/v1/users/me refuses the fresh token: 401 Unauthorized")
    assert record["evidence"]["token"].startswith("JWT, exp ")
    assert record["evidence"]["warning"].startswith("the token was already expired 10 min when issued")


def test_wrong_smoke_password(
    pytester: pytest.Pytester, api: Uvicorn, frontend: Uvicorn, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSCHECK_PASSWORD", "PLANTED-wrong-pw-91ab")
    records = sweep(pytester, fastapi(api, frontend), "auth.", faults)
    assert records["auth.login"]["message"] == (
        "login /api/v1/login/access-token refused the smoke account smoke@example.com: 400 Bad Request "
        "(wrong password, or the account is missing or inactive)"
    )
    assert "PLANTED-wrong-pw-91ab" not in json.dumps(records)


def test_backend_down(pytester: pytest.Pytester, frontend: Uvicorn) -> None:
    port = free_port()
    config = f'backend_url = "http://127.0.0.1:{port}"\napi_paths = ["/x"]\ntimeout = 1\n'
    records = sweep(pytester, config, "backend. or api.")
    assert records["backend.health"]["message"] == f"backend: connection refused by 127.0.0.1:{port}"
    assert records["api.latency"]["caused_by"] == "backend.health"


@pytest.mark.parametrize(
    ("change", "check", "message"),
    [
        ("no fallback", "frontend.spa_routes",
         "2 of 3 deep link(s) fail: /login → 404 Not Found; /settings → 404 Not Found"),
        ("missing css behind the fallback", "frontend.assets",
         "1 of 2 asset(s) do not load: /assets/app.css → 200 but HTML (the SPA fallback hides a missing file)"),
        ("missing css", "frontend.assets", "1 of 2 asset(s) do not load: /assets/app.css → 404 Not Found"),
        ("bad gateway", "frontend.root", "frontend / answers 502 Bad Gateway"),
    ],
)
def test_frontend_fault_fails_its_check(
    pytester: pytest.Pytester, api: Uvicorn, frontend: Uvicorn, site: Frontend, change: str, check: str, message: str
) -> None:
    if change == "no fallback":
        site.spa_fallback = False
    elif change == "missing css behind the fallback":
        site.missing.add("/assets/app.css")
    elif change == "missing css":
        site.spa_fallback = False
        site.missing.add("/assets/app.css")
    else:
        site.broken = True
    records = sweep(pytester, fastapi(api, frontend), check)
    assert records[check]["outcome"] == "failed"
    assert records[check]["message"] == message


def test_websocket_upgrade_refused_and_mute(pytester: pytest.Pytester, api: Uvicorn) -> None:
    with raw_http_server("426") as port:
        records = sweep(pytester, node(api, f"ws://127.0.0.1:{port}/realtime"), "ws.handshake")
    assert records["ws.handshake"]["message"].startswith(
        "426 Upgrade Required at /realtime: the server saw no Upgrade header"
    )
    with raw_http_server("mute") as port:
        records = sweep(pytester, node(api, f"ws://127.0.0.1:{port}/realtime"), "ws.ping")
    assert records["ws.ping"]["message"].startswith("no pong within 2 s")


def smtp_config(port: int, **extra: str) -> str:
    fields = {"host": '"127.0.0.1"', "port": str(port), "sender": '"app@example.com"', **extra}
    return "timeout = 2\n[smtp]\n" + "".join(f"{k} = {v}\n" for k, v in fields.items())


def test_email(pytester: pytest.Pytester, tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs")
    with smtp_server(certs.server_context, auth=True) as port:
        secure = {"starttls": "true", "user": f'"{SMTP_USER}"', "password": '"${SMTP_PASSWORD}"'}
        records = sweep(pytester, f'ca_file = "{certs.ca_file}"\n' + smtp_config(port, **secure), "email.")
        assert outcomes(records) == {"email.configured": "passed", "email.smtp_session": "passed"}

        records = sweep(pytester, smtp_config(port, **secure), "email.smtp_session")
        assert records["email.smtp_session"]["message"].startswith(
            f"smtp: TLS failure at STARTTLS with 127.0.0.1:{port}: certificate not trusted"
        )
        wrong = {**secure, "password": '"${OPSCHECK_PASSWORD}"'}
        records = sweep(pytester, f'ca_file = "{certs.ca_file}"\n' + smtp_config(port, **wrong), "email.")
        assert records["email.smtp_session"]["message"] == (
            f"smtp: authentication failed for SMTP user mailer on 127.0.0.1:{port} (535)"
        )
    refused = free_port()
    records = sweep(pytester, smtp_config(refused, sender='"${EMAILS_FROM_EMAIL}"'), "email.")
    assert records["email.smtp_session"]["message"] == f"smtp: connection refused by 127.0.0.1:{refused}"
    assert records["email.configured"]["message"] == (
        "no sender address (EMAILS_FROM_EMAIL): smtp.sender (${EMAILS_FROM_EMAIL} is not set)"
    )


def test_tls_cert_expiry(pytester: pytest.Pytester, tmp_path: Path, site: Frontend) -> None:
    certs = make_certificates(tmp_path / "certs", days=3)
    with serving(static_app(site), certs.cert_file, certs.key_file) as server:
        config = f'frontend_url = "{server.url}"\nca_file = "{certs.ca_file}"\ntimeout = 2\n'
        records = sweep(pytester, config + "thresholds = { cert_days = 14 }\n", "tls.")
        assert records["tls.cert_expiry"]["outcome"] == "failed"
        assert records["tls.cert_expiry"]["message"] == (
            f"frontend_url 127.0.0.1:{server.port}: certificate expires in 3.0 days (< 14)"
        )
        records = sweep(pytester, config + "thresholds = { cert_days = 2 }\n", "tls. or frontend.root")
        assert outcomes(records) == {"tls.cert_expiry": "passed", "frontend.root": "passed"}


SECRET_STACK = """
name: {name}
services:
  backend:
    image: ${{BUSYBOX}}
    network_mode: none
    command: sleep 3600
    environment:
      SECRET_KEY: "{secret}"
"""


@pytest.mark.docker
def test_secret_configured_through_the_stack(pytester: pytest.Pytester, compose_stack: Any) -> None:
    weak = compose_stack(SECRET_STACK.format(name="opscheck-edge-weak", secret="changethis"), name="opscheck-edge-weak")
    records = sweep(pytester, f'compose_project = "{weak}"\n', "auth.secret_configured")
    assert records["auth.secret_configured"]["message"] == "SECRET_KEY holds a placeholder value"
    strong = "PLANTED-0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c"
    name = compose_stack(SECRET_STACK.format(name="opscheck-edge-strong", secret=strong), name="opscheck-edge-strong")
    records = sweep(pytester, f'compose_project = "{name}"\n', "auth.secret_configured")
    assert records["auth.secret_configured"]["outcome"] == "passed"
    assert strong not in json.dumps(records)


@pytest.mark.parametrize("module", ["backend", "frontend", "api", "auth", "ws", "email", "tls"])
def test_resolutions_survive_redaction(module: str) -> None:
    """The resolution steps are shown through the redactor: none of their text may look like a secret."""
    import importlib

    from pytest_opscheck.redact import Redactor

    checks = importlib.import_module(f"pytest_opscheck.checks.test_{module}")
    texts = [
        mark.args[0]
        for name, function in vars(checks).items()
        if name.startswith("test_")
        for mark in getattr(function, "pytestmark", [])
        if mark.name == "resolution"
    ]
    assert texts
    for text in texts:
        assert Redactor(())(text) == text
