"""Hostile targets: text an attacker chose stays text, and a stack changing under the sweep is a result."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

PAYLOADS = (
    '<script>document.body.setAttribute("data-pwned", "script")</script>',
    '<img src=x onerror="document.body.setAttribute(\'data-pwned\', \'img\')">',
)


def chromium_dom(html: Path, profile: Path) -> str:
    """The DOM of `html` after its scripts ran, from headless Chromium."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: apt-get install chromium")
        pytest.skip("REAL SERVICE MISSING: chromium (apt-get install chromium)")
    result = subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--virtual-time-budget=3000", "--dump-dom", html.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-1000:]
    return result.stdout


def test_evidence_from_a_target_runs_nothing_in_the_html_report(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makefile(".toml", opscheck='checks = ["ops"]\n')
    pytester.mkdir("ops")
    (pytester.path / "ops" / "test_attacker.py").write_text(
        textwrap.dedent(
            f"""
            import pytest
            from pytest_opscheck.verdict import fail

            @pytest.mark.severity("P1")
            @pytest.mark.resolution({PAYLOADS[1]!r})
            def test_log_line():
                fail({PAYLOADS[0]!r}, {{"log tail": {PAYLOADS[0] + PAYLOADS[1]!r}, {PAYLOADS[1]!r}: "x"}})
            """
        )
    )
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-k", "attacker.")
    result.assert_outcomes(failed=1)
    dom = chromium_dom(pytester.path / "opscheck-report.html", tmp_path / "profile")
    body_tag = re.search(r"<body[^>]*>", dom)
    assert body_tag is not None and "data-pwned" not in body_tag.group(0), "a script from the evidence ran"
    assert 'class="opscheck-resolution"' in dom and 'id="opscheck-summary"' in dom
    assert "&lt;script&gt;document.body.setAttribute" in dom
    assert "&lt;img src=x onerror=" in dom


def test_container_removed_mid_sweep_is_a_plain_result(
    pytester: pytest.Pytester, compose_stack: Any, docker_engine: Any
) -> None:
    name = f"opsgone{uuid.uuid4().hex[:6]}"
    compose_stack(
        f"""
name: {name}
services:
  backend:
    image: ${{BUSYBOX}}
    network_mode: none
    command: sleep 3600
  worker:
    image: ${{BUSYBOX}}
    network_mode: none
    command: sleep 3600
""",
        name,
    )
    pytester.makefile(".toml", opscheck=f'compose_project = "{name}"\n')
    pytester.syspathinsert()
    pytester.makepyfile(
        remover=f"""
        import docker

        def pytest_runtest_setup(item):
            # The stack changes under the sweep: after the first check, a container disappears.
            if item.name == "test_no_crash_loop":
                client = docker.from_env()
                client.containers.get("{name}-worker-1").remove(force=True)
                client.close()
        """
    )
    result = pytester.runpytest(
        "--opscheck", "-p", "no:cacheprovider", "-p", "remover", "-k", "stack.", "--opscheck-json", "out.json"
    )
    records = {r["id"]: r for r in json.loads((pytester.path / "out.json").read_text())["checks"]}
    assert "Traceback" not in result.stdout.str()
    assert "INTERNALERROR" not in result.stdout.str()
    assert records["stack.services_running"]["outcome"] == "passed"
    assert records["stack.no_crash_loop"]["outcome"] == "failed"
    assert records["stack.no_crash_loop"]["message"] == f"worker ({name}-worker-1) was removed during the sweep"
    assert records["stack.logs_clean"]["outcome"] == "passed"


class Misbehaving:
    """Raw TCP servers on 127.0.0.1 that break the rules on purpose, each in its own thread."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self.stop = threading.Event()

    def serve(self, handler: Callable[[socket.socket], None]) -> int:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(32)
        listener.settimeout(0.2)
        self.sockets.append(listener)

        def loop() -> None:
            while not self.stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                self.sockets.append(conn)
                threading.Thread(target=self._guard, args=(handler, conn), daemon=True).start()

        threading.Thread(target=loop, daemon=True).start()
        return int(listener.getsockname()[1])

    def _guard(self, handler: Callable[[socket.socket], None], conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            handler(conn)

    def close(self) -> None:
        self.stop.set()
        for sock in self.sockets:
            sock.close()


def drip(conn: socket.socket) -> None:
    """An HTTP answer one byte every half second, never finishing."""
    conn.recv(65536)
    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Padding: " + b"a" * 10_000:
        time.sleep(0.5)
        conn.sendall(bytes([byte]))


def silent(conn: socket.socket) -> None:
    """Accepts, reads, never says a word (a WebSocket handshake or an SMTP banner that never comes)."""
    while conn.recv(65536):
        pass


def huge(conn: socket.socket) -> None:
    """A 1 GB body of HTML-ish bytes, streamed."""
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1073741824\r\n\r\n")
    chunk = b"<p>" + b"x" * 65_533
    for _ in range(1073741824 // len(chunk)):
        conn.sendall(chunk)


def bomb(conn: socket.socket) -> None:
    """200 MB of zeros in 200 KB of gzip."""
    conn.recv(65536)
    body = BOMB
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def elsewhere(conn: socket.socket) -> None:
    """Redirects to another host (never contacted: the check must not follow)."""
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:9/steal\r\nContent-Length: 0\r\n\r\n")


BOMB = gzip.compress(b"\0" * 200_000_000, compresslevel=9)


@pytest.fixture
def bad_servers() -> Iterator[Misbehaving]:
    servers = Misbehaving()
    yield servers
    servers.close()


def sweep_seconds(pytester: pytest.Pytester, config: str, select: str) -> tuple[float, dict[str, Any], str]:
    pytester.makefile(".toml", opscheck=config)
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        "--opscheck", "-p", "no:cacheprovider", "-k", select, "--opscheck-json", "out.json", timeout=120
    )
    elapsed = time.monotonic() - started
    records = {r["id"]: r for r in json.loads((pytester.path / "out.json").read_text())["checks"]}
    return elapsed, records, result.stdout.str()


def test_dripping_and_silent_peers_time_out_within_the_deadline(
    pytester: pytest.Pytester, bad_servers: Misbehaving
) -> None:
    dripping, mute_ws, mute_smtp = bad_servers.serve(drip), bad_servers.serve(silent), bad_servers.serve(silent)
    config = (
        f'backend_url = "http://127.0.0.1:{dripping}"\nfrontend_url = "http://127.0.0.1:{dripping}"\n'
        f'websocket_url = "ws://127.0.0.1:{mute_ws}/realtime"\n'
        f'smtp = {{ host = "127.0.0.1", port = {mute_smtp}, sender = "ops@example.test" }}\ntimeout = 1\n'
    )
    elapsed, records, out = sweep_seconds(pytester, config, "backend. or frontend. or ws. or email.")
    for check in ("backend.health", "frontend.root", "ws.handshake", "email.smtp_session"):
        assert records[check]["outcome"] == "failed", records[check]
        assert "timed out after 1 s" in records[check]["message"], records[check]
    assert elapsed < 25, f"the sweep took {elapsed:.1f} s"
    assert "Traceback" not in out


def test_huge_and_bombed_bodies_are_capped(pytester: pytest.Pytester, bad_servers: Misbehaving) -> None:
    large, zipped = bad_servers.serve(huge), bad_servers.serve(bomb)
    config = f'backend_url = "http://127.0.0.1:{large}"\nfrontend_url = "http://127.0.0.1:{zipped}"\ntimeout = 5\n'
    pytester.makefile(".toml", opscheck=config)
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, sys.executable, "-m", "pytest", "--opscheck", "-p", "no:cacheprovider",
         "-k", "backend.health or frontend.root", "--opscheck-json", "out.json"],
        cwd=pytester.path, capture_output=True, text=True, timeout=120,
    )
    peak_mb = int(run.stdout.strip().splitlines()[-1]) / 1024
    records = {r["id"]: r for r in json.loads((pytester.path / "out.json").read_text())["checks"]}
    # Both answer 200 with HTML: healthy, read only up to the body cap, so memory stays bounded.
    assert records["backend.health"]["outcome"] == "passed"
    assert records["frontend.root"]["outcome"] == "passed"
    assert peak_mb < 200, f"peak memory {peak_mb:.0f} MB"


def test_redirect_to_another_host_is_not_followed(pytester: pytest.Pytester, bad_servers: Misbehaving) -> None:
    port = bad_servers.serve(elsewhere)
    _, records, _ = sweep_seconds(pytester, f'backend_url = "http://127.0.0.1:{port}"\ntimeout = 2\n', "backend.health")
    record = records["backend.health"]
    assert record["outcome"] == "failed"
    assert "127.0.0.2:9/steal" in record["message"] + json.dumps(record["evidence"])


def test_flooded_container_logs_are_capped(pytester: pytest.Pytester, compose_stack: Any) -> None:
    name = f"opsflood{uuid.uuid4().hex[:6]}"
    compose_stack(
        f"""
name: {name}
services:
  backend:
    image: ${{BUSYBOX}}
    network_mode: none
    command: >-
      sh -c 'yes "all fine <script>x</script>" | head -n 1000000;
      head -c 10000000 /dev/zero | tr "\\\\0" x; echo;
      printf "\\\\377\\\\376 binary \\\\001\\n"; echo "Traceback (most recent call last):";
      printf "\\\\033[2J cleared\\n"; sleep 3600'
""",
        name,
    )
    time.sleep(8)
    pytester.makefile(".toml", opscheck=f'compose_project = "{name}"\n')
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, sys.executable, "-m", "pytest", "--opscheck", "-p", "no:cacheprovider",
         "-k", "stack.logs_clean", "--opscheck-json", "out.json"],
        cwd=pytester.path, capture_output=True, text=True, timeout=300,
    )
    peak_mb = int(run.stdout.strip().splitlines()[-1]) / 1024
    record = json.loads((pytester.path / "out.json").read_text())["checks"][0]
    assert record["outcome"] == "failed"
    evidence = "".join(record["evidence"].values())
    assert len(evidence) < 100_000
    assert "\x1b" not in evidence and "\\x1b[2J cleared" in evidence
    assert "\ufffd\ufffd binary" in evidence
    assert peak_mb < 200, f"peak memory {peak_mb:.0f} MB"


@pytest.mark.docker
def test_engine_stopping_mid_sweep_fails_the_rest_with_a_cause(
    pytester: pytest.Pytester, docker_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Docker engine of this test's own, stopped between two checks: later checks fail with a cause."""
    from realservices import ServiceUnavailable, ensure_busybox_image, ensure_docker_engine

    from pytest_opscheck.probes.resource import compose

    if os.environ.get("DOCKER_HOST"):
        pytest.skip("a second engine is started only beside a local one (DOCKER_HOST is set)")
    base = Path(f"/tmp/opscheck-e2-{uuid.uuid4().hex[:6]}")
    base.mkdir()
    try:
        engine = ensure_docker_engine(
            base / "docker.sock", base / "data", base / "exec", base / "dockerd.pid", start_timeout=120
        )
    except ServiceUnavailable as exc:
        pytest.fail(f"the second engine did not start: {exc}")
    try:
        client = engine.client()
        image = ensure_busybox_image(client)
        name = f"opsdie{uuid.uuid4().hex[:6]}"
        client.containers.run(  # exits at once on the engine's TERM, so the engine stops quickly
            image, ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"], detach=True, network_mode="none",
            name=f"{name}-backend-1",
            labels={compose.PROJECT: name, compose.SERVICE: "backend", compose.ONEOFF: "False"},
        )
        client.close()
        monkeypatch.setenv("DOCKER_HOST", engine.base_url)
        monkeypatch.setenv("OPSCHECK_TEST_DOCKERD_PID", str(engine.pid))
        pytester.makefile(".toml", opscheck=f'compose_project = "{name}"\ntimeout = 2\n')
        pytester.syspathinsert()
        pytester.makepyfile(
            stopper=f"""
            import os, signal, time

            def pytest_runtest_setup(item):
                # The engine goes away under the sweep, after the stack was opened and its first check ran.
                if item.name == "test_no_crash_loop":
                    os.kill(int(os.environ["OPSCHECK_TEST_DOCKERD_PID"]), signal.SIGTERM)
                    deadline = time.monotonic() + 60
                    while os.path.exists("{base / 'docker.sock'}") and time.monotonic() < deadline:
                        time.sleep(0.1)
            """
        )
        started = time.monotonic()
        result = pytester.runpytest(
            "--opscheck", "-p", "no:cacheprovider", "-p", "stopper", "-k", "stack.", "--opscheck-json", "out.json"
        )
        swept_in = time.monotonic() - started
    finally:
        engine.stop()
        shutil.rmtree(base, ignore_errors=True)
    output = result.stdout.str()
    assert "Traceback" not in output and "INTERNALERROR" not in output, output[-3000:]
    assert "errors" not in result.parseoutcomes(), output[-3000:]  # e.g. a socket left open by a failed call
    records = {r["id"]: r for r in json.loads((pytester.path / "out.json").read_text())["checks"]}
    assert records["stack.services_running"]["outcome"] == "passed"
    # The checks that read the engine again fail with the cause; the others judge what was read at the start.
    for check in ("stack.no_crash_loop", "stack.logs_clean"):
        assert records[check]["outcome"] == "failed", records[check]
        assert records[check]["message"].startswith("the Docker engine stopped answering during the sweep: "), (
            records[check]["message"]
        )
    assert swept_in < 30, f"the sweep took {swept_in:.0f} s"
