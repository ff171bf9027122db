"""The runbook lines done on a real Compose stack: `docker compose logs` of a crash loop whose traceback is in
an earlier run, `free -m`, "Rollback if recent deployment" (each container's creation and image, in the
evidence and the post-mortem's timeline) and `logs backend | grep -i websocket / auth / token` on failures."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from realservices import free_port

PLANTED = "PLANTED-lines-secret-0123456789abcdef"
SWEEP = ("--opscheck", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "--opscheck-json", "out.json")
YAML = """
name: {name}
services:
  backend:
    image: ${{BUSYBOX}}
    network_mode: none
    environment:
      SECRET_KEY: "{secret}"
    command: >-
      sh -c 'echo "websocket upgrade refused: origin not allowed"; echo "GET /health 200";
      echo "auth failed for bob: token expired (key $$SECRET_KEY)"; exec sleep 3600'
  looper:
    image: ${{BUSYBOX}}
    network_mode: none
    restart: on-failure
    command: >-
      sh -c 'if [ -e /tmp/crashed ]; then echo "server starting"; exec sleep 3600; fi; touch /tmp/crashed;
      echo "Traceback (most recent call last):"; echo "  File app.py, line 9"; echo "RuntimeError: crash in run 1";
      exit 1'
"""


@pytest.fixture(scope="module")
def stack(compose_stack: Any, docker_engine: Any) -> str:
    name = f"opslines{uuid.uuid4().hex[:6]}"
    compose_stack(YAML.format(name=name, secret=PLANTED), name)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        looper = docker_engine.containers.get(f"{name}-looper-1").attrs
        if looper["RestartCount"] >= 1 and looper["State"]["Status"] == "running":
            return name
        time.sleep(0.3)
    pytest.fail("the looper did not crash once and start again within 60 s")


def sweep(pytester: pytest.Pytester, config: str, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    pytester.makefile(".toml", opscheck=config)
    result = pytester.runpytest(*SWEEP, *args)
    text = (pytester.path / "out.json").read_text()
    outputs = result.stdout.str() + result.stderr.str() + text + (pytester.path / "opscheck-report.html").read_text()
    for extra in pytester.path.glob("*.md"):
        outputs += extra.read_text()
    assert PLANTED not in outputs and "0123456789abcdef" not in outputs
    return result, {c["id"]: c for c in json.loads(text)["checks"]}


def test_a_crash_loop_counts_its_earlier_runs_and_shows_the_crash(pytester: pytest.Pytester, stack: str) -> None:
    _, records = sweep(pytester, f'compose_project = "{stack}"\n', "-k", "stack.logs_clean",
                       "--opscheck-postmortem", "pm.md")
    logs = records["stack.logs_clean"]
    # Its current run only says "server starting": the traceback is in the run before.
    assert logs["outcome"] == "failed"
    assert logs["message"] == f"looper ({stack}-looper-1): 1 matching line(s) across its runs (restart count 1)"
    last_run = f"{stack}-looper-1: last lines of its last run"
    crash = next(v for k, v in logs["evidence"].items() if k.startswith(last_run))
    assert crash.splitlines()[-1] == "RuntimeError: crash in run 1"
    assert "server starting" not in crash
    # "Rollback if recent deployment": when each container was created, from which image, flagged as recent.
    deployed = logs["evidence"]["deployed"].splitlines()
    assert {line.split(":")[0] for line in deployed} == {f"{stack}-backend-1", f"{stack}-looper-1"}
    for line in deployed:
        assert " min before the sweep) from opscheck-busybox:latest (image " in line or \
            " s before the sweep) from opscheck-busybox:latest (image " in line
        assert line.endswith("recent: if the failure began with this deploy, roll back to the previous image tag")
    timeline = (pytester.path / "pm.md").read_text().split("### Timeline\n")[1].splitlines()
    assert f"{stack}-looper-1 created from opscheck-busybox:latest" in timeline[0] + timeline[1]
    assert timeline[2].endswith("opscheck sweep started")


def test_free_memory_of_the_engines_host(pytester: pytest.Pytester, stack: str) -> None:
    _, records = sweep(pytester, f'compose_project = "{stack}"\n', "-k", "host.memory_free")
    memory = records["host.memory_free"]
    assert memory["outcome"] == "passed", memory
    assert "/proc/meminfo of this host (the engine's): " in memory["evidence"]["memory"]
    assert memory["evidence"]["free"].splitlines()[1].startswith("Mem:")
    _, records = sweep(pytester, f'compose_project = "{stack}"\nthresholds = {{ host_memory_free_percent = 100 }}\n',
                       "-k", "host.memory_free")
    assert records["host.memory_free"]["outcome"] == "failed"
    assert records["host.memory_free"]["message"].startswith("only ")
    assert "of memory available on the engine's host" in records["host.memory_free"]["message"]


def test_failing_websocket_and_auth_checks_carry_the_backends_matching_log_lines(
    pytester: pytest.Pytester, stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSCHECK_TEST_PW", "PLANTED-lines-pw-42")
    port = free_port()  # nothing listens: both fail
    _, records = sweep(
        pytester,
        f'compose_project = "{stack}"\nbackend_url = "http://127.0.0.1:{port}"\n'
        f'websocket_url = "ws://127.0.0.1:{port}/realtime"\ntimeout = 2\n'
        'auth = { login_path = "/login", style = "json", username = "smoke", password = "${OPSCHECK_TEST_PW}" }\n',
        "-k", "ws.handshake or auth.login",
    )
    ws, login = records["ws.handshake"], records["auth.login"]
    assert ws["outcome"] == login["outcome"] == "failed"
    assert ws["evidence"][f"{stack}-backend-1: log lines matching websocket|socket"] == (
        "websocket upgrade refused: origin not allowed"
    )
    assert login["evidence"][f"{stack}-backend-1: log lines matching auth|token|jwt"] == (
        "auth failed for bob: token expired (key ***)"
    )
    for record in (ws, login):
        assert record["evidence"]["deployed"].startswith(f"{stack}-backend-1: created ")
