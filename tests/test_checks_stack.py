"""The stack checks against a real Docker engine with Compose v2: each fault made real, and a healthy stack."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from realservices import free_port

PLANTED_SECRET = "PLANTED-secret-value-0123456789abcdef-xyz"
STACK_CHECKS = (
    "stack.services_running",
    "stack.no_crash_loop",
    "stack.no_oom_kill",
    "stack.healthchecks",
    "stack.required_env",
    "stack.ports_bound",
    "stack.backend_reaches_db",
    "stack.logs_clean",
    "stack.memory_headroom",
    "stack.cpu",
    "host.disk_free",
)


def healthy_yaml(name: str, web_port: int, db_port: int) -> str:
    return f"""
name: {name}
services:
  backend:
    image: ${{BUSYBOX}}
    network_mode: host
    command: httpd -f -p 127.0.0.1:{web_port} -h /tmp
    expose: ["{web_port}"]
    mem_limit: 64m
    environment:
      SECRET_KEY: "{PLANTED_SECRET}"
      DOMAIN: example.test
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
      retries: 1
  db:
    image: ${{BUSYBOX}}
    network_mode: host
    command: httpd -f -p 127.0.0.1:{db_port} -h /tmp
    expose: ["{db_port}"]
"""


def faulty_yaml(name: str, taken_port: int, dead_port: int) -> str:
    return f"""
name: {name}
services:
  backend:
    image: ${{BUSYBOX}}
    network_mode: host
    command: sleep 3600
    environment:
      SECRET_KEY: changethis
      JWT_SECRET: "short-{PLANTED_SECRET[:8]}"
  worker:
    image: ${{BUSYBOX}}
    network_mode: none
    command: sh -c 'echo "Traceback (most recent call last):"; echo "  File app.py, line 3"; exit 2'
  looper:
    image: ${{BUSYBOX}}
    network_mode: none
    restart: always
    command: sh -c 'echo FATAL boot failure; exit 3'
  hog:
    image: ${{BUSYBOX}}
    network_mode: none
    mem_limit: 8m
    memswap_limit: 8m
    command: sh -c 'x=$$(head -c 64000000 /dev/zero | tr "\\0" a); sleep 3600'
  sick:
    image: ${{BUSYBOX}}
    network_mode: none
    command: sleep 3600
    healthcheck:
      test: ["CMD", "sh", "-c", "echo database unreachable; exit 1"]
      interval: 1s
      retries: 1
  web:
    image: ${{BUSYBOX}}
    network_mode: host
    command: httpd -f -p 127.0.0.1:{taken_port} -h /tmp
    expose: ["{taken_port}"]
  lost:
    image: ${{BUSYBOX}}
    network_mode: host
    command: sleep 3600
    expose: ["{dead_port}"]
  later:
    image: ${{BUSYBOX}}
    network_mode: none
    command: sleep 3600
    profiles: [never]
"""


def wait_until(predicate: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.3)


@pytest.fixture(scope="module")
def healthy(compose_stack: Any, docker_engine: Any) -> tuple[str, str, int]:
    name = f"opsok{uuid.uuid4().hex[:6]}"
    db_port = free_port()
    yaml = healthy_yaml(name, free_port(), db_port)
    compose_stack(yaml, name)

    def settled() -> bool:
        containers = docker_engine.containers.list(filters={"label": f"com.docker.compose.project={name}"})
        return all(c.attrs["State"].get("Health", {}).get("Status", "healthy") == "healthy" for c in containers)

    wait_until(settled, 30)
    return name, yaml, db_port


@pytest.fixture(scope="module")
def faulty(compose_stack: Any, docker_engine: Any) -> Iterator[tuple[str, str, int]]:
    name = f"opsbad{uuid.uuid4().hex[:6]}"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        taken = holder.getsockname()[1]
        yaml = faulty_yaml(name, taken, free_port())
        compose_stack(yaml, name)

        def settled() -> bool:
            found = {c.labels["com.docker.compose.service"]: c.attrs for c in docker_engine.containers.list(
                all=True, filters={"label": f"com.docker.compose.project={name}"})}
            return (
                found["hog"]["State"]["OOMKilled"]
                and found["sick"]["State"].get("Health", {}).get("Status") == "unhealthy"
                and found["looper"]["RestartCount"] >= 1
                and found["web"]["State"]["Status"] == "exited"
            )

        wait_until(settled, 60)
        yield name, yaml, taken


def sweep(pytester: pytest.Pytester, yaml: str, extra: str = "") -> tuple[pytest.RunResult, dict[str, Any]]:
    (pytester.path / "docker-compose.yml").write_text(yaml)
    pytester.makefile(".toml", opscheck=f'compose_file = "docker-compose.yml"\n{extra}')
    result = pytester.runpytest(
        "--opscheck", "-p", "no:cacheprovider", "-k", "stack. or host.", "--opscheck-json", "out.json"
    )
    records = {c["check_id"]: c for c in json.loads((pytester.path / "out.json").read_text())["checks"]}
    outputs = result.stdout.str() + (pytester.path / "out.json").read_text()
    outputs += (pytester.path / "opscheck-report.html").read_text()
    assert PLANTED_SECRET not in outputs and PLANTED_SECRET[:8] not in outputs.replace("PLANTED-", "")
    return result, records


def test_healthy_stack_passes(pytester: pytest.Pytester, healthy: tuple[str, str, int]) -> None:
    _, yaml, db_port = healthy
    result, records = sweep(
        pytester,
        yaml,
        f'required_env = {{ backend = ["SECRET_KEY", "DOMAIN"] }}\nstack_db_address = "127.0.0.1:{db_port}"\n',
    )
    for check in STACK_CHECKS:
        assert records[check]["outcome"] == "passed", records[check]
    assert result.ret == 0


def test_faulty_stack_fails_each_check(pytester: pytest.Pytester, faulty: tuple[str, str, int]) -> None:
    name, yaml, taken = faulty
    result, records = sweep(
        pytester,
        yaml,
        'required_env = { backend = ["SECRET_KEY", "JWT_SECRET", "POSTGRES_SERVER"] }\n'
        f'stack_db_address = "127.0.0.1:{free_port()}"\n',
    )
    failed = {check: records[check]["message"] for check in STACK_CHECKS if records[check]["outcome"] == "failed"}

    running = failed["stack.services_running"]
    assert "later (no container)" in running and "worker (" in running and "exited with code 2" in running
    assert "no container" in records["stack.services_running"]["evidence"]["docker compose ps"]

    loop = failed["stack.no_crash_loop"]
    assert "looper" in loop and "worker" in loop
    looper_logs = next(v for k, v in records["stack.no_crash_loop"]["evidence"].items() if "looper" in k and "log" in k)
    assert "FATAL boot failure" in looper_logs

    assert "hog" in failed["stack.no_oom_kill"]
    assert "memory limit 8.0 MiB" in next(iter(records["stack.no_oom_kill"]["evidence"].values()))

    assert "sick" in failed["stack.healthchecks"] and "unhealthy" in failed["stack.healthchecks"]
    assert "database unreachable" in next(iter(records["stack.healthchecks"]["evidence"].values()))

    env = failed["stack.required_env"]
    assert "SECRET_KEY holds a placeholder value" in env
    assert "JWT_SECRET is too short (14 characters, at least 32)" in env
    assert "POSTGRES_SERVER is not set" in env

    ports = failed["stack.ports_bound"]
    assert f"port conflict: web ({name}-web-1) could not bind port {taken}" in ports
    assert "lost" in ports and "nothing accepts" in ports

    assert "backend cannot connect to 127.0.0.1:" in failed["stack.backend_reaches_db"]

    logs = failed["stack.logs_clean"]
    assert "worker" in logs and "looper" in logs
    assert "Traceback (most recent call last)" in "".join(records["stack.logs_clean"]["evidence"].values())

    result.stdout.fnmatch_lines(["*P1 CRITICAL:*checks failing*"])


def test_thresholds_fail_resource_checks(pytester: pytest.Pytester, healthy: tuple[str, str, int]) -> None:
    _, yaml, _ = healthy
    _, records = sweep(
        pytester, yaml, "thresholds = { disk_free_percent = 100, memory_percent = 0, cpu_percent = 0 }\n"
    )
    assert records["host.disk_free"]["outcome"] == "failed"
    assert "% free on" in records["host.disk_free"]["message"]
    assert records["stack.memory_headroom"]["outcome"] == "failed"
    assert "backend" in records["stack.memory_headroom"]["message"]
    assert records["stack.cpu"]["outcome"] == "failed"


def test_unreachable_engine_is_one_cause(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    pytester.makefile(".toml", opscheck='compose_project = "whatever"\n')
    started = time.monotonic()
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-k", "stack.", "--opscheck-json", "out.json")
    assert time.monotonic() - started < 20
    records = json.loads((pytester.path / "out.json").read_text())["checks"]
    assert {r["outcome"] for r in records} == {"failed"}
    root = [r for r in records if r["caused_by"] is None]
    assert [r["check_id"] for r in root] == ["stack.services_running"]
    assert "no Docker engine at unix:///nonexistent/docker.sock" in root[0]["message"]
    assert "Traceback" not in result.stdout.str()


def test_backend_reaches_db_names_an_unresolvable_host(pytester: pytest.Pytester, healthy: tuple[str, str, int]) -> None:
    _, yaml, _ = healthy
    _, records = sweep(pytester, yaml, 'stack_db_address = "db.opscheck.invalid:5432"\ntimeout = 2\n')
    record = records["stack.backend_reaches_db"]
    assert record["outcome"] == "failed"
    assert record["message"].startswith("backend cannot resolve db.opscheck.invalid")
