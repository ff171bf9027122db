"""The fingerprint of the edge: an https backend whose certificate is replaced under a running server (same
address), and the version string the app exposes (a `version` field of its health answer, or a configured path
and field, or a configured header), each listed as a change of the failing sweep after the green one."""

from __future__ import annotations

import datetime
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from pytest_opscheck import targets as targets_module
from pytest_opscheck.changes import History
from pytest_opscheck.config import settings_from_table
from pytest_opscheck.model import CheckRecord, Summary, summarize


@dataclass
class Served:
    """What the server answers right now: its certificate (a server context) and its version."""

    context: ssl.SSLContext
    version: str


class _Handler(BaseHTTPRequestHandler):
    served: Served

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/health":
            body = json.dumps({"status": "ok", "version": self.served.version}).encode()
        elif self.path == "/about":
            body = json.dumps({"build": {"release": f"r-{self.served.version}"}}).encode()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Build", f"build-{self.served.version}")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


class _TLSServer(ThreadingHTTPServer):
    """An https server whose certificate can be replaced while it runs (as a reloaded proxy does)."""

    served: Served

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        sock.settimeout(5)
        return self.served.context.wrap_socket(sock, server_side=True), address


def leaf(ca: trustme.CA, issued: datetime.datetime) -> ssl.SSLContext:
    cert = ca.issue_cert("127.0.0.1", "localhost", not_before=issued, not_after=issued + datetime.timedelta(days=90))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


@pytest.fixture
def https_backend(tmp_path: Path) -> Iterator[tuple[_TLSServer, trustme.CA, Path]]:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    served = Served(leaf(ca, now - datetime.timedelta(days=30)), "1.4.2")
    handler = type("Handler", (_Handler,), {"served": served})
    server = _TLSServer(("127.0.0.1", 0), handler)
    server.served = served
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server, ca, ca_file
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def sweep(history: History, settings: Any, outcome: str) -> Summary:
    builtin = getattr(targets_module, "BUILTIN", None)
    targets = targets_module.Targets(settings, builtin) if builtin is not None else targets_module.Targets(settings)
    targets.prefetch()
    try:
        check = CheckRecord("backend.health", "x::backend.health", "P1", outcome, 0.1, "", "Steps", service="backend")
        return history.update(summarize([check]), targets)
    finally:
        targets.close()


def test_replaced_certificate_and_new_version_are_listed(https_backend: Any, tmp_path: Path) -> None:
    server, ca, ca_file = https_backend
    port = server.server_address[1]
    table = {"backend_url": f"https://127.0.0.1:{port}", "health_path": "/health", "ca_file": str(ca_file)}
    settings = settings_from_table(table, tmp_path / "opscheck.toml")
    history = History(tmp_path / "state.json", settings)
    green = sweep(history, settings, "passed")
    assert green.changes == ()

    issued = datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(minutes=3)
    server.served.context = leaf(ca, issued)
    server.served.version = "1.5.0"
    failing = sweep(history, settings, "failed")
    changes = {c.what: c for c in failing.changes}
    cert = changes[f"backend_url 127.0.0.1:{port}: certificate"]
    assert cert.before is not None and cert.after is not None and cert.before != cert.after
    assert cert.before.startswith("serial ") and ", expires " in cert.after
    assert cert.at == issued.strftime("%Y-%m-%dT%H:%M:%SZ")  # when the new certificate was issued
    version = changes["backend: version"]
    assert (version.before, version.after) == ("1.4.2", "1.5.0")
    assert failing.changes[0].at >= failing.changes[-1].at  # type: ignore[operator]


@pytest.mark.parametrize(
    ("extra", "before", "after"),
    [
        ({"version_path": "/about", "version_field": "build.release"}, "r-1.4.2", "r-2.0.0"),
        ({"version_header": "X-Build"}, "build-1.4.2", "build-2.0.0"),
    ],
)
def test_version_from_a_configured_path_field_or_header(
    https_backend: Any, tmp_path: Path, extra: dict[str, str], before: str, after: str
) -> None:
    server, _, ca_file = https_backend
    table = {"backend_url": f"https://127.0.0.1:{server.server_address[1]}", "health_path": "/health",
             "ca_file": str(ca_file), "extra": extra}
    try:
        settings = settings_from_table(table, tmp_path / "opscheck.toml")
    except Exception as exc:  # noqa: BLE001 - [tool.opscheck.extra] lands with the core's rewrite (issue 22)
        pytest.skip(f"no [tool.opscheck.extra] in this config yet: {exc}")
    history = History(tmp_path / "state.json", settings)
    sweep(history, settings, "passed")
    server.served.version = "2.0.0"
    failing = sweep(history, settings, "failed")
    version = next(c for c in failing.changes if c.what == "backend: version")
    assert (version.before, version.after) == (before, after)
