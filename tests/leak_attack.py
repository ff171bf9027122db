"""A held-out-style attack on the sweep's secrecy, shared by tests/test_leaks_sweep.py and bench/hostile.py:
a CLASS of secrets (long with markup characters, opaque tokens, a JWT signed with a known secret, digits only,
short) planted through every channel a target or a team has (login answer fields under any name, cookies of
any name, 401 and 500 bodies in every encoding of `pytest_opscheck.redact.ENCODINGS`, split over two lines,
cut, response headers, log records of httpx/httpcore/websockets loggers, a check parametrised by a secret,
pytest-metadata's environment, captured stdout, an assertion message), then every output the product writes
read back: the terminal under `-v -rA` with `log_cli`, the HTML, JSON, JUnit, Prometheus, post-mortem and the
`--log-file`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leakcheck import Outputs, Send, answer, body_of, leaks_of_each, prometheus_args, source_root

from pytest_opscheck.redact import ENCODINGS


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwt(claims: dict[str, Any], key: str) -> str:
    """An HS256 JWT over `claims`, signed with `key`."""
    head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64url(json.dumps(claims).encode())
    signature = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64url(signature)}"


@dataclass
class Planted:
    """One class of secrets, fresh for each attack: name -> value."""

    password: str = field(default_factory=lambda: f"Zq9&pl<{secrets.token_hex(6)}>\"7'/+{secrets.token_hex(3)}")
    jwt_secret: str = field(default_factory=lambda: f"hs256-{secrets.token_urlsafe(18)}")
    pin: str = field(default_factory=lambda: str(secrets.randbelow(900000) + 100000))  # digits only, 6
    short: str = field(default_factory=lambda: f"Q{secrets.token_hex(2)}")  # 5 characters
    api_token: str = field(default_factory=lambda: f"api{secrets.token_hex(10)}")
    session_key: str = field(default_factory=lambda: f"sk{secrets.token_hex(12)}")
    value: str = field(default_factory=lambda: f"vv{secrets.token_hex(12)}")
    opaque: str = field(default_factory=lambda: f"op{secrets.token_hex(12)}")
    cookie: str = field(default_factory=lambda: f"ck{secrets.token_hex(14)}")
    deploy_token: str = field(default_factory=lambda: f"dpl{secrets.token_hex(10)}")
    git_token: str = field(default_factory=lambda: f"ghp_{secrets.token_hex(16)}")
    token: str = ""

    def __post_init__(self) -> None:
        self.token = jwt({"sub": "smoke", "pin": self.pin, "pw": self.password}, self.jwt_secret)

    def values(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if isinstance(v, str)}


def encoded_page(planted: Planted) -> str:
    """An error page echoing each secret in every encoding, whole, split over two lines and cut."""
    lines = []
    for name, secret in planted.values().items():
        for encoding, encode in ENCODINGS.items():
            form = encode(secret)
            lines.append(f"<li>{name} {encoding}: {form}</li>")
            if len(secret) >= 8:
                half = len(form) // 2
                lines.append(f"<li>{name} {encoding} wrapped: {form[:half]}\n    {form[half:]}</li>")
        if len(secret) >= 12:
            lines.append(f"<li>{name} cut: {secret[:9]}... and …{secret[-13:]}</li>")
    lines.append(f"<li>pin={planted.pin}; short: {planted.short}, PIN {planted.pin} of {planted.short}</li>")
    return "<html><body><h1>Internal Server Error</h1><ul>\n" + "\n".join(lines) + "\n</ul></body></html>"


def app(planted: Planted) -> Any:
    """The hostile backend: a login answering with secrets under any name, a 401 and a 500 echoing them."""
    page = encoded_page(planted)

    async def serve(scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/login":
            await body_of(receive)
            body = json.dumps({"sessionKey": planted.session_key, "value": planted.value, "token_type": "bearer",
                               "data": {"nested": [{"opaque": planted.opaque}]}, "access_token": planted.token})
            await answer(send, 200, body, kind="application/json",
                         headers={"Set-Cookie": f"weird_name={planted.cookie}; Path=/; HttpOnly"})
        elif path == "/me":
            _, payload, signature = planted.token.split(".")
            value = base64.b64encode(planted.value.encode()).decode()
            detail = (f"session {planted.cookie} belongs to another device; key "
                      f"{planted.session_key.encode().hex()}; token ***{payload[5:]}.{signature}; value {value}"
                      f" opaque {planted.opaque[:10]}\n{planted.opaque[10:]}")
            await answer(send, 401, json.dumps({"detail": detail}), kind="application/json",
                         headers={"WWW-Authenticate": f'Bearer error="invalid_token" token="{planted.token}"'})
        elif path == "/health":
            await answer(send, 500, page, headers={"X-Debug-Password": planted.password,
                                                    "Set-Cookie": f"trace={planted.cookie}"})
        else:
            await answer(send, 500, page)

    return serve


TEAM_CHECK = textwrap.dedent(
    '''
    import logging, os
    import pytest

    TOKENS = [os.environ["OPS_API_TOKEN"], os.environ["OPS_PIN"]]


    @pytest.mark.severity("P4")
    @pytest.mark.resolution("Keep logs clean")
    def test_caplog_holds_no_token(caplog):
        caplog.set_level(logging.DEBUG)
        logging.getLogger("httpx").info("GET /x?token=%s and %s", os.environ["OPS_API_TOKEN"], os.environ["OPS_PIN"])
        text = caplog.text + " ".join(r.getMessage() for r in caplog.records)
        assert "GET /x?token=***" in text
        assert os.environ["OPS_API_TOKEN"] not in text and os.environ["OPS_PIN"] not in text, "caplog leaks"


    @pytest.mark.severity("P3")
    @pytest.mark.resolution("Read the error page")
    def test_error_page_logged(opscheck_config):
        import httpx

        page = httpx.get(opscheck_config.backend_url + "/health", timeout=3).text
        logging.getLogger("opscheck.team").warning("error page: %s", page)
        print(page)
        assert "Internal Server Error" not in page, page


    @pytest.mark.severity("P3")
    @pytest.mark.resolution("Rotate the API token")
    @pytest.mark.parametrize("token", TOKENS)
    def test_token_is_current(token):
        logging.getLogger("httpx").info('HTTP Request: GET http://127.0.0.1/x?sig=%s "HTTP/1.1 200 OK"', token)
        logging.getLogger("httpcore.http11").debug(
            "receive_response_headers.complete return_value=(b'HTTP/1.1', 200, b'OK', "
            "[(b'set-cookie', b'sid=%s; Path=/'), (b'authorization', b'Bearer %s')])", token, token)
        logging.getLogger("websockets.client").debug("> Authorization: Bearer %s", token)
        logging.getLogger("opscheck.team").warning("token %s, short %s, pin %s", token,
                                                   os.environ["OPS_SHORT"], os.environ["OPS_PIN"])
        print("stdout:", token, os.environ["OPS_SHORT"])
        assert token == "rotated", f"token {token} is not the rotated one"
    '''
)


def prepare(folder: Path, planted: Planted, backend_url: str) -> tuple[list[str], dict[str, str]]:
    """Writes the config, the team's check and pytest's ini into `folder`: the sweep's command and environment."""
    (folder / "opscheck.toml").write_text(
        f'backend_url = "{backend_url}"\nhealth_path = "/health"\ntimeout = 3\napi_paths = ["/api/items"]\n'
        'checks = ["ops"]\n'
        'auth = { login_path = "/login", style = "json", username = "smoke", password = "${SMOKE_PW}", '
        'probe_path = "/me" }\n'
        "[extra]\n"
        'jwt_secret = "${JWT_SECRET}"\napi_token = "${OPS_API_TOKEN}"\npin_secret = "${OPS_PIN}"\n'
        'short_password = "${OPS_SHORT}"\n',
        encoding="utf-8",
    )
    (folder / "ops").mkdir(exist_ok=True)
    (folder / "ops" / "test_team_tokens.py").write_text(TEAM_CHECK, encoding="utf-8")
    (folder / "pytest.ini").write_text(
        "[pytest]\nlog_cli = true\nlog_cli_level = DEBUG\nlog_level = DEBUG\n", encoding="utf-8"
    )
    command = [sys.executable, "-m", "pytest", "--opscheck", "-p", "no:cacheprovider", "-v", "-rA",
               "-k", "backend. or auth. or api. or team_tokens",
               "--opscheck-json", "out.json", "--junitxml", "junit.xml", "--opscheck-postmortem", "postmortem.md",
               *prometheus_args(folder), "--log-file", "opscheck.log", "--log-file-level", "DEBUG",
               "--metadata", "DEPLOY_TOKEN", planted.deploy_token]
    env = {
        **os.environ, "PYTHONPATH": source_root(), "SMOKE_PW": planted.password, "JWT_SECRET": planted.jwt_secret,
        "OPS_API_TOKEN": planted.api_token, "OPS_PIN": planted.pin, "OPS_SHORT": planted.short,
        "GIT_URL": f"https://x-access-token:{planted.git_token}@github.com/acme/app.git",
        "BUILD_URL": f"https://{planted.git_token}@ci.example.test/job/1/",
    }
    return command, env


def sweep(folder: Path, planted: Planted, backend_url: str, pythonpath: str | None = None,
          timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], Outputs]:
    """The attack's sweep in its own process; every output it wrote."""
    command, env = prepare(folder, planted, backend_url)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=timeout, env=env)
    return result, Outputs.of(folder, result)


def leak_table(planted: Planted, outputs: Outputs) -> dict[str, list[str]]:
    """For each planted secret, the outputs that show it (empty: it leaked nowhere)."""
    return leaks_of_each(planted.values(), outputs.texts)


def env_error(folder: Path, planted: Planted, pythonpath: str | None = None) -> subprocess.CompletedProcess[str]:
    """A sweep refused at once: the `.env` value holding the password has a `${` Compose cannot read."""
    (folder / ".env").write_text(f"DB_PASSWORD=A{planted.password}${{{planted.api_token}\n", encoding="utf-8")
    (folder / "opscheck.toml").write_text('database_url = "postgresql://app:${DB_PASSWORD}@127.0.0.1:9/app"\n',
                                          encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": pythonpath or source_root()}
    return subprocess.run([sys.executable, "-m", "pytest", "--opscheck", "-p", "no:cacheprovider"], cwd=folder,
                          capture_output=True, text=True, timeout=60, env=env)
