"""Secrets a web target hands back, planted and looked for in every output of a real sweep: a token in a
redirect's Location, the sweep's own (opaque) token echoed in a 401, the smoke password echoed escaped,
encoded and truncated in an error page, and `${VAR}`s interpolated into URL queries. Ordinary words stay."""

from __future__ import annotations

import base64
import html
import json
import secrets
from typing import Any
from urllib.parse import parse_qs

import pytest
from leakcheck import REPORTS, Send, answer, body_of, run_sweep
from servers import serving


def test_token_in_a_location_header_is_withheld(pytester: pytest.Pytester) -> None:
    token = f"tok_Opaque{secrets.token_hex(12)}"

    async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/health":  # off the configured hosts: not followed, and its query withheld from the cause
            await answer(send, 302, headers={"Location": f"http://127.0.0.1:17003/x?token={token}&next=%2F"})
        elif path == "/":  # on the host: followed, and the final path's query withheld too
            await answer(send, 302, headers={"Location": f"/app?token={token}"})
        else:
            await answer(send, 503, f"<html>maintenance for {scope['query_string'].decode()}</html>")

    with serving(app) as server:
        config = f'backend_url = "{server.url}"\nfrontend_url = "{server.url}"\ntimeout = 3\n'
        _, found, outputs = run_sweep(pytester, config, "backend.health or frontend.root")
    assert found["backend.health"]["outcome"] == "failed"
    assert "to another host, http://127.0.0.1:17003/x?…: not followed" in found["backend.health"]["message"]
    assert found["frontend.root"]["outcome"] == "failed"
    assert "GET /app?… → 503" in json.dumps(found["frontend.root"]["evidence"], ensure_ascii=False)
    outputs.require(*REPORTS)
    outputs.assert_absent(token, "the Location's token")


def test_the_sweeps_opaque_token_echoed_back_is_withheld(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    token = f"opq-{secrets.token_hex(20)}"  # not a JWT: redacted because the sweep obtained it, whatever its shape

    async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/login":
            await body_of(receive)  # any password: the wrong one too gets a token (a SECURITY failure)
            body = json.dumps({"access_token": token, "token_type": "bearer"})
            await answer(send, 200, body, kind="application/json")
        elif scope["path"] == "/me":
            sent = dict(scope["headers"]).get(b"authorization", b"").decode()
            await answer(send, 401, json.dumps({"detail": f"rejected {sent!r}; tail {token[-20:]}",
                                                "b64": base64.b64encode(token.encode()).decode()}),
                         kind="application/json")
        else:
            await answer(send, 200, "{}", kind="application/json")

    monkeypatch.setenv("SMOKE_PW", f"pw-{secrets.token_hex(8)}")
    with serving(app) as server:
        config = (f'backend_url = "{server.url}"\nhealth_path = "/health"\ntimeout = 3\n'
                  'auth = { login_path = "/login", username = "smoke", password = "${SMOKE_PW}", '
                  'probe_path = "/me" }\n')
        _, found, outputs = run_sweep(pytester, config, "auth.")
    assert found["auth.login"]["outcome"] == "passed"
    assert found["auth.login"]["evidence"]["token"].startswith("opaque token (44 characters")
    assert found["auth.token_accepted"]["outcome"] == "failed"
    assert found["auth.rejects_bad_password"]["outcome"] == "failed"
    assert found["auth.rejects_bad_password"]["message"].startswith("SECURITY: login accepts a wrong password")
    outputs.require(*REPORTS)
    outputs.assert_absent(token, "the sweep's token")
    # Redaction replaces secrets, not words.
    outputs.assert_present("(token withheld)", "out.json", "opscheck-report.html")


def test_smoke_password_echoed_escaped_encoded_or_cut_is_withheld(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = f'Zq9&pl<{secrets.token_hex(8)}>"7731'
    log_line = '"POST /api/v1/login/access-token HTTP/1.1" 500'

    async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/api/v1/login/access-token":
            form = parse_qs((await body_of(receive)).decode())
            sent = form.get("password", [""])[0]
            basic = base64.b64encode(f"smoke:{sent}".encode()).decode()
            page = (f"<html><pre>{html.escape(sent)} {json.dumps({'password': sent})[14:-2]} Basic {basic} "
                    f"input_value={{'pw': '{sent[:9]}...{sent[-22:]}'}} {sent.replace('&', '%26')}</pre>"
                    f"<p>{log_line}</p></html>")
            await answer(send, 500, page)
        else:
            await answer(send, 200, "{}", kind="application/json")

    monkeypatch.setenv("SMOKE_PW", password)
    with serving(app) as server:
        config = (f'backend_url = "{server.url}"\nhealth_path = "/health"\ntimeout = 3\n'
                  'auth = { login_path = "/api/v1/login/access-token", username = "smoke", '
                  'password = "${SMOKE_PW}" }\n')
        _, found, outputs = run_sweep(pytester, config, "auth.login")
    assert found["auth.login"]["outcome"] == "failed"
    assert "fails with a server error: 500" in found["auth.login"]["message"]
    outputs.require(*REPORTS)
    outputs.assert_absent(password, "the smoke password")
    outputs.assert_present(log_line, "out.json", "opscheck-report.html")


def test_variables_in_url_queries_are_secrets(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    ticket, signature = f"wst{secrets.token_hex(10)}", f"sig{secrets.token_hex(10)}"

    async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] == "websocket":  # refuses the upgrade, naming what it was asked
            await receive()
            await send({"type": "websocket.http.response.start", "status": 403,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "websocket.http.response.body", "body": scope["query_string"]})
            return
        if scope["type"] != "http":
            return
        if scope["path"] == "/api/items":
            await answer(send, 500, f"<h1>boom</h1> at {scope['path']}?{scope['query_string'].decode()}")
        else:
            await answer(send, 200, "{}", kind="application/json")

    # The variables' names look like nothing secret: where they land (a URL's query) makes them secrets.
    monkeypatch.setenv("WS_TICKET", ticket)
    monkeypatch.setenv("APP_SIG", signature)
    with serving(app) as server:
        ws = server.url.replace("http://", "ws://")
        config = (f'backend_url = "{server.url}"\nhealth_path = "/health"\ntimeout = 3\n'
                  f'websocket_url = "{ws}/realtime?ticket=${{WS_TICKET}}"\n'
                  'api_paths = ["/api/items?sig=${APP_SIG}&page=2"]\n')
        result, found, outputs = run_sweep(pytester, config, "api.no_server_errors or ws.handshake")
    assert found["api.no_server_errors"]["outcome"] == "failed"
    assert found["ws.handshake"]["outcome"] == "failed"
    assert "opscheck targets:" in result.stdout and "/realtime?ticket=***" in result.stdout
    outputs.require(*REPORTS)
    outputs.assert_absent(ticket, "WS_TICKET")
    outputs.assert_absent(signature, "APP_SIG")
    outputs.assert_present("page=2", "out.json")
