"""The README's demo command: it sets itself up, exits as its fault implies, says what failed and how to fix
it, writes an HTML report that reads right in Chromium, and leaves nothing running."""

from __future__ import annotations

import html
import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from test_hostile import chromium_dom

ROOT = Path(__file__).parents[1]
DEMO_TIMEOUT = 600


def demo(
    fault: str | None, out: Path, mode: str = "auto", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / "demo" / "run.py"), "--mode", mode, "--out", str(out)]
    if fault is not None:
        command += ["--fault", fault]
    started = time.monotonic()
    run = subprocess.run(command, capture_output=True, text=True, timeout=DEMO_TIMEOUT,
                         env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    print(f"demo --fault {fault} --mode {mode}: exit {run.returncode} in {time.monotonic() - started:.1f} s")
    return run


def why(run: subprocess.CompletedProcess[str]) -> str:
    return run.stdout[-4000:] + "\n--- stderr ---\n" + run.stderr[-2000:]


def records(out: Path) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in json.loads((out / "opscheck.json").read_text())["checks"]}


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def assert_all_stopped(out: Path) -> None:
    """No port of the demo's target answers any more, and its Compose project has no container left."""
    config = tomllib.loads((out / "opscheck.toml").read_text())
    ports = [urlsplit(config[key]).port for key in ("backend_url", "frontend_url", "database_url")]
    ports.append(config["smtp"]["port"])
    still = [port for port in ports if port and listening(port)]
    assert not still, f"the demo left ports listening: {still}"
    if "compose_project" in config:
        left = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={config['compose_project']}"],
            capture_output=True, text=True, timeout=60,
        )
        assert left.stdout.strip() == "", f"containers left: {left.stdout}"


def test_healthy_demo_passes(tmp_path: Path) -> None:
    run = demo(None, tmp_path, env={"OPSCHECK_DEMO_FAULT": "none"})
    assert run.returncode == 0, why(run)
    assert "pytest-opscheck demo: fault none\n" in run.stdout
    assert re.search(r"^mode: (Compose stack|local processes on 127\.0\.0\.1) \(", run.stdout, re.M), why(run)
    assert "\nverdict: OK: " in run.stdout
    assert f"HTML report: {tmp_path / 'opscheck-report.html'}" in run.stdout
    assert (tmp_path / "opscheck-report.html").is_file()
    assert all(r["outcome"] in ("passed", "skipped") for r in records(tmp_path).values())
    assert_all_stopped(tmp_path)


def test_broken_login_fails_auth_login_with_its_resolution(tmp_path: Path) -> None:
    run = demo("broken-login", tmp_path)
    assert run.returncode == 1, why(run)
    cause = r"FAILED auth\.login — [^\n]+\n\s+cause: login /api/auth/login fails with a server error: 500"
    assert re.search(cause, run.stdout)
    assert "The smoke account gets no credential" in run.stdout  # the resolution, in the terminal
    verdict = json.loads((tmp_path / "opscheck.json").read_text())["verdict"]
    assert verdict.startswith("P2 HIGH:") and "auth.login" in verdict
    assert f"\nverdict: {verdict}\n" in run.stdout
    report = tmp_path / "opscheck-report.html"
    assert f"HTML report: {report}" in run.stdout and report.is_file()
    assert_all_stopped(tmp_path)

    dom = chromium_dom(report, tmp_path / "profile")
    summary = re.search(r'id="opscheck-summary".*?class="opscheck-verdict">(.*?)</p>', dom, re.S)
    assert summary, dom[:3000]
    assert html.unescape(summary.group(1)) == verdict
    resolutions = [html.unescape(m) for m in re.findall(r'class="opscheck-resolution">(.*?)</pre>', dom, re.S)]
    assert any(r.startswith("The smoke account gets no credential") for r in resolutions), resolutions


@pytest.mark.parametrize(
    ("fault", "failing"),
    [
        ("db-down", "db.reachable"),
        ("crash-loop", "backend.health"),
        ("missing-migration", "db.migrations_current"),
        ("ws-refused", "ws.handshake"),
        ("deeplinks-404", "frontend.spa_routes"),
    ],
)
def test_each_fault_fails_its_check_as_local_processes(fault: str, failing: str, tmp_path: Path) -> None:
    run = demo(fault, tmp_path, mode="local")
    assert run.returncode == 1, why(run)
    assert "mode: local processes on 127.0.0.1 (--mode local)" in run.stdout
    found = records(tmp_path)
    assert found[failing]["outcome"] == "failed", found[failing]
    assert found[failing]["caused_by"] is None
    assert found[failing]["resolution"]
    if fault == "missing-migration":  # the one check, nothing else
        assert [c for c, r in found.items() if r["outcome"] == "failed"] == ["db.migrations_current"]
    assert_all_stopped(tmp_path)


@pytest.mark.docker
@pytest.mark.parametrize(("fault", "failing"), [("none", None), ("crash-loop", "stack.no_crash_loop")])
def test_demo_as_a_compose_stack(fault: str, failing: str | None, tmp_path: Path, compose_stack: Any) -> None:
    run = demo(fault, tmp_path, mode="compose")
    assert run.returncode == (0 if failing is None else 1), why(run)
    assert "mode: Compose stack (" in run.stdout
    found = records(tmp_path)
    swarm_only = ("stack.nodes_ready", "stack.tasks_scheduled")  # skipped on Compose: not configured: swarm_stack
    stack_checks = {c: r["outcome"] for c, r in found.items() if c.startswith("stack.") and c not in swarm_only}
    if failing is None:
        assert set(stack_checks.values()) == {"passed"}, stack_checks
        assert found["auth.secret_configured"]["outcome"] == "passed"
    else:
        assert found[failing]["outcome"] == "failed", found[failing]
        assert "restart" in found[failing]["message"].lower() or "crash" in found[failing]["message"].lower()
        # The terminal is enough: under the root, the line the backend died on (uvicorn importing the app) and
        # the resolution with the project and the service written in, every row within 80 columns.
        section = run.stdout[run.stdout.index("= opscheck ="):]
        screen = section.splitlines()[1:24]
        text = " ".join(" ".join(screen).split())
        assert screen[0].startswith("P1 CRITICAL FAILED stack.no_crash_loop"), section[:2000]
        assert "evidence: " in text and "RuntimeError: backend cannot start: REDIS_URL is not set" in text, text
        project = found[failing]["evidence"]
        assert re.search(r"docker compose -p opscheck-demo-\w+ logs backend --tail=100", text), text
        assert "<service>" not in text and project
        assert all(len(row) <= 80 for row in screen if not row.lstrip().startswith(("dmesg", "docker"))), screen
    assert_all_stopped(tmp_path)


def test_fault_from_the_environment_and_a_wrong_one(tmp_path: Path) -> None:
    run = demo(None, tmp_path, env={"OPSCHECK_DEMO_FAULT": "no-such-fault"})
    assert run.returncode == 2
    assert "OPSCHECK_DEMO_FAULT=no-such-fault: expected one of none, db-down" in run.stderr
    assert not (tmp_path / "opscheck.toml").exists()


def test_demo_sh_installs_into_a_virtualenv_of_its_own_once() -> None:
    """`scripts/demo.sh` never pip-installs into the active Python: its packages go into .venv-demo, the first
    time only (the README's demo command shares that virtualenv)."""
    before = subprocess.run([sys.executable, "-m", "pip", "freeze"], capture_output=True, text=True).stdout
    runs = [subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh"), "--help"], cwd=ROOT, capture_output=True,
                           text=True, timeout=DEMO_TIMEOUT) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr[-2000:]
    assert "usage: run.py" in runs[1].stdout
    assert "installing the demo" not in runs[1].stderr, "installed once, not on every run"
    assert (ROOT / ".venv-demo" / "bin" / "python").exists()
    assert subprocess.run([sys.executable, "-m", "pip", "freeze"], capture_output=True, text=True).stdout == before
