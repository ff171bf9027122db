"""The stack checks against a real Docker engine with Compose v2: each fault made real, and a healthy stack.

Only `network_mode: host` or `none`; every connection goes to 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from realservices import free_port

PLANTED_SECRET = "PLANTED-secret-value-0123456789abcdef"
WEAK_JWT = "weak-jwt-PLANTED-42"
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
    "host.memory_free",
    "stack.config_current",
)
# The Swarm checks skip on a Compose project ("not configured: swarm_stack"): tests/test_swarm_config.py.
SWARM_ONLY = ("stack.nodes_ready", "stack.tasks_scheduled")


# Only the stack and host checks; hypothesis's plugin is left out of these in-process runs (seconds each).
SWEEP = (
    "--opscheck", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
    "-k", "stack. or host.", "--opscheck-json", "out.json",
)


def healthy_yaml(name: str, web_port: int, db_port: int) -> str:
    return f"""
name: {name}
services:
  prestart:
    image: ${{BUSYBOX}}
    network_mode: none
    command: "true"
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
    depends_on:
      prestart: {{condition: service_completed_successfully}}
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
      JWT_SECRET: "{WEAK_JWT}"
  worker:
    image: ${{BUSYBOX}}
    network_mode: none
    environment:
      SECRET_KEY: "{PLANTED_SECRET}"
    command: >-
      sh -c 'echo "starting with key $$SECRET_KEY"; echo "Traceback (most recent call last):";
      echo "  File app.py, line 3"; echo "KeyError: boom"; exit 2'
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
    command: sh -c 'exec dd if=/dev/zero of=/dev/null bs=64M count=1'
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
    command: nc -l -p {taken_port}
    expose: ["{taken_port}"]
  lost:
    image: ${{BUSYBOX}}
    network_mode: host
    command: sleep 3600
    expose: ["{dead_port}"]
"""


# Declared in the compose file the sweep reads, never brought up: a service with no container at all.
NEVER_STARTED = """
  later:
    image: ${BUSYBOX}
    network_mode: none
    command: sleep 3600
"""


def wait_until(predicate: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.3)


def project_states(docker_engine: Any, name: str) -> dict[str, dict[str, Any]]:
    label = {"label": f"com.docker.compose.project={name}"}
    return {c.labels["com.docker.compose.service"]: c.attrs for c in docker_engine.containers.list(all=True,
                                                                                                     filters=label)}


@pytest.fixture(scope="module")
def healthy(compose_stack: Any, docker_engine: Any) -> tuple[str, str, int]:
    name = f"opsok{uuid.uuid4().hex[:6]}"
    db_port = free_port()
    yaml = healthy_yaml(name, free_port(), db_port)
    compose_stack(yaml, name)

    def settled() -> bool:
        states = project_states(docker_engine, name).values()
        return all(s["State"].get("Health", {}).get("Status", "healthy") == "healthy" for s in states)

    wait_until(settled, 120)
    return name, yaml, db_port


@pytest.fixture(scope="module")
def faulty(compose_stack: Any, docker_engine: Any) -> Iterator[tuple[str, str, int, int]]:
    name = f"opsbad{uuid.uuid4().hex[:6]}"
    with socket.socket() as holder:  # a listener of this test holds the port `web` wants: a real conflict
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        taken = holder.getsockname()[1]
        dead = free_port()
        yaml = faulty_yaml(name, taken, dead)
        compose_stack(yaml, name)

        def settled() -> bool:
            found = project_states(docker_engine, name)
            return bool(
                (found["hog"]["State"]["OOMKilled"] or found["hog"]["State"]["ExitCode"] == 137)  # event missed
                and found["sick"]["State"].get("Health", {}).get("Status") == "unhealthy"
                and found["looper"]["RestartCount"] >= 1
                and found["web"]["State"]["Status"] == "exited"
                and found["worker"]["State"]["Status"] == "exited"
            )

        wait_until(settled, 180)
        if not settled():
            found = project_states(docker_engine, name)
            seen = {service: (attrs["State"].get("Status"), attrs["State"].get("OOMKilled"),
                              attrs["State"].get("Health", {}).get("Status"), attrs.get("RestartCount"))
                    for service, attrs in sorted(found.items())}
            pytest.fail(f"the faults did not all happen within 180 s (OOM kill, unhealthy, restart, exits): {seen}")
        yield name, yaml + NEVER_STARTED, taken, dead


def sweep(pytester: pytest.Pytester, yaml: str, extra: str = "") -> tuple[pytest.RunResult, dict[str, Any]]:
    """Run the stack and host checks on `yaml` (its `name:` is the running project); every output is secret-free."""
    (pytester.path / "docker-compose.yml").write_text(yaml)
    pytester.makefile(".toml", opscheck=f'compose_file = "docker-compose.yml"\n{extra}')
    result = pytester.runpytest(*SWEEP)
    records = {c["id"]: c for c in json.loads((pytester.path / "out.json").read_text())["checks"]}
    outputs = result.stdout.str() + result.stderr.str() + (pytester.path / "out.json").read_text()
    outputs += (pytester.path / "opscheck-report.html").read_text()
    for secret in (PLANTED_SECRET, "0123456789abcdef", WEAK_JWT):
        assert secret not in outputs
    return result, records


def test_healthy_stack_passes(pytester: pytest.Pytester, healthy: tuple[str, str, int]) -> None:
    _, yaml, db_port = healthy  # its prestart job exited 0: done, not down
    result, records = sweep(
        pytester,
        yaml,
        f'required_env = {{ backend = ["SECRET_KEY", "DOMAIN"] }}\nstack_db_address = "127.0.0.1:{db_port}"\n',
    )
    for check in STACK_CHECKS:
        assert records[check]["outcome"] == "passed", records[check]
    assert result.ret == 0


def test_faulty_stack_fails_each_check(pytester: pytest.Pytester, faulty: tuple[str, str, int, int]) -> None:
    name, yaml, taken, dead = faulty
    refused = free_port()
    result, records = sweep(
        pytester,
        yaml,
        'required_env = { backend = ["SECRET_KEY", "JWT_SECRET", "POSTGRES_SERVER"] }\n'
        f'stack_db_address = "127.0.0.1:{refused}"\n',
    )
    failed = {check: records[check]["message"] for check in STACK_CHECKS if records[check]["outcome"] == "failed"}

    def evidence(check: str) -> str:
        return "\n".join(f"{k}: {v}" for k, v in records[check]["evidence"].items())

    # a service that exits; a declared service never started
    running = failed["stack.services_running"]
    assert "later (no container)" in running and f"worker ({name}-worker-1 exited with code 2)" in running
    assert "docker compose up -d worker" in evidence("stack.services_running")
    assert "docker compose logs later --tail=100" in evidence("stack.services_running")

    # restart: always on a command that fails; the exited worker
    loop = failed["stack.no_crash_loop"]
    assert f"looper ({name}-looper-1)" in loop and f"worker ({name}-worker-1) exited with code 2" in loop
    assert "FATAL boot failure" in records["stack.no_crash_loop"]["evidence"][f"{name}-looper-1: last 100 log lines"]
    assert "restart policy always" in records["stack.no_crash_loop"]["evidence"][f"{name}-looper-1: state"]

    # mem_limit 8m and a shell that allocates 64 MB
    assert failed["stack.no_oom_kill"] == f"killed by the OOM killer: hog ({name}-hog-1)"
    assert "memory limit 8.0 MiB" in records["stack.no_oom_kill"]["evidence"][f"{name}-hog-1"]

    # a healthcheck that always fails
    assert failed["stack.healthchecks"] == f"healthcheck not healthy: sick ({name}-sick-1) unhealthy"
    assert "database unreachable" in evidence("stack.healthchecks")

    # a placeholder, a weak secret, a missing variable
    env = failed["stack.required_env"]
    assert f"backend ({name}-backend-1): SECRET_KEY holds a placeholder value" in env
    assert f"JWT_SECRET is too short ({len(WEAK_JWT)} characters, at least 32)" in env
    assert "POSTGRES_SERVER is not set" in env

    # a port held by this test's socket; a declared port nothing listens on
    ports = failed["stack.ports_bound"]
    assert f"port conflict: web ({name}-web-1) could not bind port {taken}" in ports
    assert f"lost ({name}-lost-1) publishes port {dead} but 127.0.0.1:{dead} refuses connections" in ports

    # the database address refuses connections from inside the backend container
    assert failed["stack.backend_reaches_db"] == (
        f"backend ({name}-backend-1) cannot connect to 127.0.0.1:{refused}: connection refused"
    )

    # a traceback and a FATAL in the logs; the secret the worker printed is masked
    logs = failed["stack.logs_clean"]
    assert f"worker ({name}-worker-1)" in logs and f"looper ({name}-looper-1)" in logs
    worker_lines = records["stack.logs_clean"]["evidence"][f"{name}-worker-1: matching lines"]
    assert "Traceback (most recent call last)" in worker_lines and "KeyError: boom" in worker_lines
    assert "starting with key ***" in worker_lines

    assert set(STACK_CHECKS) - set(failed) == {
        "stack.memory_headroom", "stack.cpu", "host.disk_free", "host.memory_free", "stack.config_current"
    }
    result.stdout.fnmatch_lines(["*P1 CRITICAL:*checks failing*"])
    assert result.ret == 1


def test_crash_looping_service_is_the_root_cause(pytester: pytest.Pytester, faulty: tuple[str, str, int, int]) -> None:
    """The backend's checks fail because its container keeps restarting: the report says so and fixes that first."""
    _, yaml, _, _ = faulty
    (pytester.path / "docker-compose.yml").write_text(yaml)
    backend = f"http://127.0.0.1:{free_port()}"
    for service, root in (("looper", "stack.no_crash_loop"), ("backend", None)):
        pytester.makefile(
            ".toml",
            opscheck=f'compose_file = "docker-compose.yml"\nbackend_service = "{service}"\nbackend_url = "{backend}"\n',
        )
        result = pytester.runpytest(
            "--opscheck", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
            "-k", "no_crash_loop or backend.health", "--opscheck-json", "out.json",
        )
        records = {c["id"]: c for c in json.loads((pytester.path / "out.json").read_text())["checks"]}
        assert records["backend.health"]["outcome"] == "failed"
        assert records["backend.health"]["caused_by"] == root
        if root:
            result.stdout.fnmatch_lines([f"*FAILED backend.health*caused by {root}*", f"*fix first: {root}"])


def test_thresholds_fail_resource_checks(pytester: pytest.Pytester, healthy: tuple[str, str, int]) -> None:
    name, yaml, _ = healthy
    _, records = sweep(
        pytester, yaml, "thresholds = { disk_free_percent = 100, memory_percent = 0, cpu_percent = 0 }\n"
    )
    assert records["host.disk_free"]["outcome"] == "failed"
    assert "% free on /" in records["host.disk_free"]["message"]
    assert records["stack.memory_headroom"]["outcome"] == "failed"
    assert f"backend ({name}-backend-1) at " in records["stack.memory_headroom"]["message"]
    assert "64.0 MiB" in records["stack.memory_headroom"]["evidence"]["memory"]
    assert records["stack.cpu"]["outcome"] == "failed"
    assert f"db ({name}-db-1) at " in records["stack.cpu"]["message"]


def test_not_configured_skips_with_the_key(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", opscheck='backend_url = "http://127.0.0.1:9"\n')
    pytester.runpytest(*SWEEP)
    records = [r for r in json.loads((pytester.path / "out.json").read_text())["checks"] if r["id"] not in SWARM_ONLY]
    assert {r["id"] for r in records} == set(STACK_CHECKS)
    assert {(r["outcome"], r["message"]) for r in records} == {("skipped", "not configured: compose_project")}


def test_unreachable_engine_is_one_cause(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    pytester.makefile(".toml", opscheck='compose_project = "whatever"\n')
    started = time.monotonic()
    result = pytester.runpytest(*SWEEP)
    assert time.monotonic() - started < 20
    records = [r for r in json.loads((pytester.path / "out.json").read_text())["checks"] if r["id"] not in SWARM_ONLY]
    assert {r["outcome"] for r in records} == {"failed"}
    assert {r["id"] for r in records} == set(STACK_CHECKS)
    root = [r for r in records if r["caused_by"] is None]
    assert [r["id"] for r in root] == ["stack.services_running"]
    cause = "docker: no Docker engine at unix:///nonexistent/docker.sock: is dockerd running? (or set DOCKER_HOST)"
    assert {r["message"] for r in records} == {cause}
    assert "Traceback" not in result.stdout.str()


def test_attribution_is_the_same_on_five_sweeps_and_a_stopped_backend_is_named(
    pytester: pytest.Pytester, faulty: tuple[str, str, int, int]
) -> None:
    """The looper restarts every moment: whether a sweep catches it "restarting" or "Up 1 second", its restart
    count and how recent the restart is make it a crash loop, five sweeps in a row. The worker exited (2) with
    no restart policy: stopped, so the backend checks on it are caused by stack.services_running."""
    _, yaml, _, _ = faulty
    (pytester.path / "docker-compose.yml").write_text(yaml)
    backend = f"http://127.0.0.1:{free_port()}"
    for service, root, sweeps in (("looper", "stack.no_crash_loop", 5), ("worker", "stack.services_running", 1)):
        pytester.makefile(
            ".toml",
            opscheck=f'compose_file = "docker-compose.yml"\nbackend_service = "{service}"\nbackend_url = "{backend}"\n',
        )
        for _ in range(sweeps):
            pytester.runpytest(
                "--opscheck", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                "-k", "services_running or no_crash_loop or backend.health", "--opscheck-json", "out.json",
            )
            records = {c["id"]: c for c in json.loads((pytester.path / "out.json").read_text())["checks"]}
            assert records["backend.health"]["caused_by"] == root, (service, records["backend.health"])
            assert records[root]["outcome"] == "failed" and records[root]["caused_by"] is None


def one_fault_each_yaml(name: str, db_port: int) -> str:
    """Four services, each a fault of its own kind: a backend that exits on its placeholder secret (as the
    FastAPI template's settings check does), a worker that exits because the database refuses it, one killed
    for memory under its limit, and one that exited once at start-up and has been healthy since."""
    return f"""
name: {name}
services:
  backend:
    image: ${{BUSYBOX}}
    network_mode: none
    restart: always
    environment:
      SECRET_KEY: changethis
    command: >-
      sh -c 'echo "INFO:     Will watch for changes"; echo "Traceback (most recent call last):";
      echo "  File \\"/app/app/core/config.py\\", line 112, in _enforce_non_default_secrets";
      echo "    self._check_default_secret(\\"SECRET_KEY\\", self.SECRET_KEY)";
      echo "ValueError: The value of SECRET_KEY is \\"changethis\\", for security, please change it, at least for
      deployments."; exit 1'
  worker:
    image: ${{BUSYBOX}}
    network_mode: none
    restart: always
    command: >-
      sh -c 'echo "psycopg.OperationalError: connection failed: connection to server at \\"127.0.0.1\\", port
      {db_port} failed: Connection refused"; exit 1'
  hungry:
    image: ${{BUSYBOX}}
    network_mode: none
    mem_limit: 8m
    memswap_limit: 8m
    command: sh -c 'echo "loading the model"; exec dd if=/dev/zero of=/dev/null bs=64M count=1'
  flaky:
    image: ${{BUSYBOX}}
    network_mode: none
    restart: on-failure
    command: sh -c 'if [ -f /tmp/ran ]; then exec sleep 3600; fi; touch /tmp/ran; echo "FATAL not ready"; exit 1'
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
      retries: 1
"""


@pytest.fixture(scope="module")
def one_fault_each(compose_stack: Any, docker_engine: Any) -> tuple[str, str, int]:
    name = f"opsone{uuid.uuid4().hex[:6]}"
    db_port = free_port()
    yaml = one_fault_each_yaml(name, db_port)
    compose_stack(yaml, name)

    def settled() -> bool:
        found = project_states(docker_engine, name)
        flaky = found["flaky"]
        return (found["backend"]["RestartCount"] >= 2 and found["worker"]["RestartCount"] >= 2
                # The kill: flagged by the engine, or (its event missed) the main process's SIGKILL.
                and (found["hungry"]["State"]["OOMKilled"] or found["hungry"]["State"]["ExitCode"] == 137)
                and flaky["RestartCount"] == 1 and flaky["State"].get("Health", {}).get("Status") == "healthy")

    wait_until(settled, 120)
    if not settled():
        seen = {s: (a["State"].get("Status"), a["RestartCount"], a["State"].get("Health", {}).get("Status"))
                for s, a in project_states(docker_engine, name).items()}
        pytest.fail(f"the stack did not reach its faults within 120 s: {seen}")
    return name, yaml, db_port


@pytest.mark.parametrize("database", [True, False], ids=["database-refusing", "no-database-configured"])
def test_each_fault_is_one_root_and_every_other_failure_names_its_root(
    pytester: pytest.Pytester, one_fault_each: tuple[str, str, int], database: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The backend's placeholder secret is the root of its crash loop (its log names the variable); the worker's
    loop follows from the database it logs as refusing (when the sweep checks that database), else is a root of
    its own; the OOM kill is the root of the service it stopped; the service that exited once at start-up and is
    healthy since is no fault at all."""
    name, yaml, db_port = one_fault_each
    monkeypatch.setenv("OPSCHECK_TEST_DB_PASSWORD", "PLANTED-pw-never-used-1")
    (pytester.path / "docker-compose.yml").write_text(yaml)
    url = f'database_url = "postgresql://app:${{OPSCHECK_TEST_DB_PASSWORD}}@127.0.0.1:{db_port}/app"\n' \
        if database else ""
    pytester.makefile(".toml", opscheck='compose_file = "docker-compose.yml"\n'
                                        f'required_env = {{ backend = ["SECRET_KEY"] }}\n{url}')
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                                "-k", "stack. or db.reachable", "--opscheck-json", "out.json")
    records = {c["id"]: c for c in json.loads((pytester.path / "out.json").read_text())["checks"]}
    failed = {i: r for i, r in records.items() if r["outcome"] == "failed"}
    roots = ["db.reachable" if database else "stack.no_crash_loop", "stack.no_oom_kill", "stack.required_env"]
    assert sorted(i for i, r in failed.items() if r["caused_by"] is None) == roots, {
        i: (r["message"], r["caused_by"]) for i, r in failed.items()}
    assert {r["caused_by"] for r in failed.values()} - {None} <= set(roots)
    assert "stack.no_crash_loop" in failed and "stack.logs_clean" in failed
    result.stdout.fnmatch_lines([f"*fix first: {', '.join(roots)}*"])
    for record in failed.values():
        assert f"{name}-flaky-1" not in record["message"], record
    assert "SECRET_KEY holds a placeholder value" in failed["stack.required_env"]["message"]
    assert "please change it, at least for deployments." in failed["stack.logs_clean"]["evidence"][
        f"{name}-backend-1: matching lines"]
