"""A sweep of a dead stack is bounded by about one timeout, and names its root causes first."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from realservices import free_port

ROOTS = {"backend.health", "frontend.root", "ws.handshake", "email.smtp_session", "db.reachable",
         "stack.services_running", "auth.login"}


def config(ports: list[int], timeout: float) -> str:
    http, front, ws, smtp, db = ports
    return (
        f'compose_project = "deadstack"\nbackend_url = "http://127.0.0.1:{http}"\nhealth_path = "/health"\n'
        f'metrics_path = "/metrics"\nfrontend_url = "http://127.0.0.1:{front}"\nfrontend_routes = ["/", "/login"]\n'
        f'api_paths = ["/api/items"]\nwebsocket_url = "ws://127.0.0.1:{ws}/realtime"\n'
        f'database_url = "postgresql://app:${{OPSCHECK_TEST_DB_PASSWORD}}@127.0.0.1:{db}/app"\n'
        f'smtp = {{ host = "127.0.0.1", port = {smtp}, sender = "ops@example.test" }}\ntimeout = {timeout}\n'
        '[auth]\nlogin_path = "/api/auth/login"\nstyle = "json"\nusername = "ops"\n'
        'password = "${OPSCHECK_TEST_DB_PASSWORD}"\nprobe_path = "/api/me"\n'
    )


@pytest.fixture
def blackholes() -> Iterator[list[int]]:
    with ExitStack() as stack:
        ports = []
        for _ in range(6):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            sock.listen(64)
            ports.append(int(sock.getsockname()[1]))
        yield ports


def sweep(pytester: pytest.Pytester, text: str) -> tuple[float, list[dict[str, Any]], str]:
    pytester.makefile(".toml", opscheck=text)
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        "--opscheck", "-p", "no:cacheprovider", "--opscheck-json", "out.json", timeout=300
    )
    elapsed = time.monotonic() - started
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    return elapsed, json.loads((pytester.path / "out.json").read_text())["checks"], result.stdout.str()


def assert_root_causes_first(records: list[dict[str, Any]], out: str) -> None:
    failed = [r for r in records if r["outcome"] == "failed"]
    assert len(failed) >= 25
    for record in failed:
        assert record["caused_by"] is None or record["caused_by"] in ROOTS, record
    consequences = [r for r in failed if r["caused_by"]]
    assert len(consequences) >= 15, "most failures are consequences of a few targets being down"
    assert "fix first: " in out
    section = out[out.index("= opscheck =") :]
    first_consequence = section.index("— caused by")
    for root in ("FAILED db.reachable", "FAILED backend.health"):
        assert section.index(root) < first_consequence


def test_refusing_stack_fails_fast_with_root_causes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSCHECK_TEST_DB_PASSWORD", "PLANTED-sweep-pw-31")
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{free_port()}")
    timeout = 60  # longer than the whole sweep may take: waiting for it once fails the test, slowness does not
    elapsed, records, out = sweep(pytester, config([free_port() for _ in range(5)], timeout))
    assert_root_causes_first(records, out)
    assert elapsed < timeout, f"{elapsed:.1f} s: a refused connection must not wait for the timeout"
    assert "PLANTED-sweep-pw-31" not in out


def test_blackholed_stack_takes_about_one_timeout(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, blackholes: list[int]
) -> None:
    monkeypatch.setenv("OPSCHECK_TEST_DB_PASSWORD", "PLANTED-sweep-pw-31")
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{blackholes[5]}")
    timeout = 2.0
    elapsed, records, out = sweep(pytester, config(blackholes[:5], timeout))
    assert_root_causes_first(records, out)
    checks = len(records)
    # One timeout per check, one after the other, would take checks * timeout; concurrency keeps it near one.
    assert elapsed < checks * timeout / 3, f"{elapsed:.1f} s for {checks} checks"
