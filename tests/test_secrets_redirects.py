"""Credentials never follow a redirect to another origin nor down to plain http: an https backend that
redirects the token's request to http is a SECURITY failure and the plain-http listener hears no Authorization
header; a hop to another (configured) origin goes without it, and a login's body does not go at all."""

from __future__ import annotations

import json
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from leakcheck import REPORTS, answer, body_of, run_sweep
from servers import make_certificates, serving


class Listener:
    """A plain TCP HTTP listener on 127.0.0.1 that keeps every request it hears (head and body) and answers
    401 to each: what reaches it is all a test needs to know."""

    def __init__(self) -> None:
        self.heard: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    self.heard.append(data)
                    conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    self.heard.append(data)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    heard = Listener()
    yield heard
    heard.close()


def token_backend(token: str, me: Any) -> Any:
    """An API: POST /login gives `token`; `me(scope, send)` answers the probe path."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/login":
            await body_of(receive)
            await answer(send, 200, json.dumps({"access_token": token}), kind="application/json")
        elif scope["path"] == "/me":
            await me(scope, send)
        else:
            await answer(send, 200, "{}", kind="application/json")

    return app


def test_https_to_http_redirect_is_a_security_failure_and_sends_nothing(
    pytester: pytest.Pytester, tmp_path: Path, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = f"opq-{secrets.token_hex(20)}"
    certs = make_certificates(tmp_path / "certs")

    async def me(scope: dict[str, Any], send: Any) -> None:
        await answer(send, 307, headers={"Location": f"http://127.0.0.1:{listener.port}/me"})

    monkeypatch.setenv("SMOKE_PW", f"pw-{secrets.token_hex(8)}")
    with serving(token_backend(token, me), certs.cert_file, certs.key_file) as server:
        # The plain listener is even one of the configured hosts: the downgrade alone refuses the hop.
        config = (f'backend_url = "{server.url}"\nfrontend_url = "http://127.0.0.1:{listener.port}"\n'
                  f'ca_file = "{certs.ca_file}"\nhealth_path = "/health"\ntimeout = 3\n'
                  'auth = { login_path = "/login", username = "smoke", password = "${SMOKE_PW}", '
                  'probe_path = "/me" }\n')
        _, found, outputs = run_sweep(pytester, config, "auth.login or auth.token_accepted")
    record = found["auth.token_accepted"]
    assert record["outcome"] == "failed"
    assert "SECURITY: GET https://127.0.0.1:" in record["message"]
    assert f"redirects (307) down to plain http, http://127.0.0.1:{listener.port}/me: not followed" in record["message"]
    assert not [h for h in listener.heard if b"authorization" in h.lower()], listener.heard
    # Only the frontend's own opener (GET /) reached it: the redirected request was not sent down to plain http.
    assert [h.split(b"\r\n")[0] for h in listener.heard] == [b"GET / HTTP/1.1"]
    outputs.require(*REPORTS)
    outputs.assert_absent(token, "the token")


def test_credentials_stay_on_their_origin(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = f"opq-{secrets.token_hex(20)}"
    password = f"pw-{secrets.token_hex(12)}"
    certs = make_certificates(tmp_path / "certs")
    heard: list[dict[str, str]] = []

    async def other(scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The frontend's origin (configured, https): what reaches it is kept."""
        if scope["type"] != "http":
            return
        body = await body_of(receive)
        if scope["path"] != "/":  # the frontend's own opener aside
            heard.append({**{k.decode(): v.decode() for k, v in scope["headers"]}, "body": body.decode()})
        await answer(send, 401, '{"detail": "who are you"}', kind="application/json")

    with serving(other, certs.cert_file, certs.key_file) as frontend:

        async def me(scope: dict[str, Any], send: Any) -> None:
            await answer(send, 307, headers={"Location": f"{frontend.url}/me"})

        app = token_backend(token, me)

        async def moving_login(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"] == "/moved-login":  # 307 keeps the body: never re-sent
                await answer(send, 307, headers={"Location": f"{frontend.url}/login"})
            else:
                await app(scope, receive, send)

        monkeypatch.setenv("SMOKE_PW", password)
        with serving(moving_login, certs.cert_file, certs.key_file) as backend:
            base = (f'backend_url = "{backend.url}"\nfrontend_url = "{frontend.url}"\nca_file = "{certs.ca_file}"\n'
                    'health_path = "/health"\ntimeout = 3\n')
            auth = 'username = "smoke", password = "${SMOKE_PW}", probe_path = "/me"'
            _, found, outputs = run_sweep(
                pytester, base + f'auth = {{ login_path = "/login", {auth} }}\n', "auth.token_accepted")
            assert found["auth.token_accepted"]["outcome"] == "failed"  # the other origin got no token: 401
            assert heard and all("authorization" not in h for h in heard), heard
            outputs.assert_absent(token, "the token")

            heard.clear()
            _, found, outputs = run_sweep(
                pytester, base + f'auth = {{ login_path = "/moved-login", {auth} }}\n', "auth.login")
    record = found["auth.login"]
    assert record["outcome"] == "failed"
    assert "to another origin" in record["message"] and "not followed with the request's body" in record["message"]
    assert heard == [], "the login's body (the password) never went to the other origin"
    outputs.assert_absent(password, "the smoke password")
