"""The stack checks on a real Docker Swarm stack (a swarm of the tests' own, `swarmbed`): a healthy stack passes
every one, and each fault made real fails the check that names it with the swarm's own words.

Host networking only (`networks: [hostnet]`, the predefined `host` network); every connection goes to 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from realservices import DOCKER_SOCKET, free_port
from swarmbed import SwarmEngine, swarm, wait_until

__all__ = ["swarm"]  # the fixture, imported for these tests

PLANTED_SECRET = "PLANTED-swarm-secret-0123456789abcdef"
WEAK_JWT = "weak-jwt-PLANTED-42"
SWARM_CHECKS = (
    "stack.services_running", "stack.no_crash_loop", "stack.no_oom_kill", "stack.healthchecks",
    "stack.required_env", "stack.ports_bound", "stack.backend_reaches_db", "stack.logs_clean",
    "stack.memory_headroom", "stack.cpu", "host.disk_free", "stack.nodes_ready", "stack.tasks_scheduled",
)
SWEEP = ("--opscheck", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-k", "stack. or host.",
         "--opscheck-json", "out.json")


def healthy_yaml(web_port: int, db_port: int) -> str:
    return f"""version: "3.8"
services:
  backend:
    image: ${{BUSYBOX}}
    stop_grace_period: 1s
    command: httpd -f -p 127.0.0.1:{web_port} -h /tmp
    networks: [hostnet]
    ports: [{{target: {web_port}, published: {web_port}, mode: host}}]
    environment:
      SECRET_KEY: "{PLANTED_SECRET}"
      DOMAIN: example.test
    healthcheck: {{test: ["CMD", "true"], interval: 1s, retries: 1}}
    deploy: {{resources: {{limits: {{memory: 64M}}}}}}
  db:
    image: ${{BUSYBOX}}
    stop_grace_period: 1s
    command: httpd -f -p 127.0.0.1:{db_port} -h /tmp
    networks: [hostnet]
"""


def faulty_yaml(dead_port: int) -> str:
    quick = "restart_policy: {condition: any, delay: 1s}"
    return f"""version: "3.8"
services:
  backend:
    image: ${{BUSYBOX}}
    stop_grace_period: 1s
    command: sleep 3600
    networks: [hostnet]
    environment: {{SECRET_KEY: changethis, JWT_SECRET: "{WEAK_JWT}"}}
  crash:
    image: ${{BUSYBOX}}
    stop_grace_period: 1s
    networks: [hostnet]
    environment: {{SECRET_KEY: "{PLANTED_SECRET}"}}
    command: >-
      sh -c 'echo "starting with key $$SECRET_KEY"; echo "Traceback (most recent call last):";
      echo "KeyError: boom"; exit 1'
    deploy: {{{quick}}}
  oom:
    image: ${{BUSYBOX}}
    stop_grace_period: 1s
    networks: [hostnet]
    command: sh -c 'sleep 1; head -c 200m /dev/zero | tail'
    deploy:
      resources: {{limits: {{memory: 16M}}}}
      restart_policy: {{condition: on-failure, delay: 1s, max_attempts: 1}}
  childoom:
    image: ${{BUSYBOX}}
    stop_grace_period: 1s
    networks: [hostnet]
    command: sh -c 'sh -c "echo 1000 > /proc/self/oom_score_adj && exec tail /dev/zero"; exit 0'
    deploy: {{resources: {{limits: {{memory: 16M}}}}, restart_policy: {{condition: none}}}}
  sick:
    image: ${{BUSYBOX}}
    stop_grace_period: 1s
    networks: [hostnet]
    command: sleep 3600
    healthcheck: {{test: ["CMD", "sh", "-c", "echo database unreachable; exit 1"], interval: 1s, retries: 1}}
    deploy: {{{quick}}}
  big:
    image: ${{BUSYBOX}}
    stop_grace_period: 1s
    networks: [hostnet]
    command: sleep 3600
    deploy: {{resources: {{reservations: {{memory: 100000G}}}}}}
  pinned:
    image: ${{BUSYBOX}}
    stop_grace_period: 1s
    networks: [hostnet]
    command: sleep 3600
    deploy: {{placement: {{constraints: ["node.labels.zone == nowhere"]}}}}
  ghost:
    image: opscheck-missing:nope
    stop_grace_period: 1s
    networks: [hostnet]
    command: sleep 3600
  lost:
    image: ${{BUSYBOX}}
    stop_grace_period: 1s
    networks: [hostnet]
    command: sleep 3600
    ports: [{{target: {dead_port}, published: {dead_port}, mode: host}}]
"""


def states(swarm: SwarmEngine, stack: str) -> dict[str, list[dict[str, Any]]]:
    """Each service's tasks (by its name within the stack): their status and desired state."""
    client = swarm.client()
    try:
        label = {"label": f"com.docker.stack.namespace={stack}"}
        names = {s["ID"]: s["Spec"]["Name"].removeprefix(f"{stack}_") for s in client.api.services(filters=label)}
        tasks = client.api.tasks(filters=label)
    finally:
        client.close()
    found: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        status = task["Status"] | {"Desired": task["DesiredState"]}
        found.setdefault(names.get(task["ServiceID"], "?"), []).append(status)
    return found


@pytest.fixture(scope="module")
def stacks(swarm: SwarmEngine) -> tuple[str, int, str]:
    """Both stacks deployed at once (the faults happen while the healthy stack is swept): names and db port."""
    healthy, db_port, faulty = f"ok{uuid.uuid4().hex[:6]}", free_port(), f"bad{uuid.uuid4().hex[:6]}"
    swarm.deploy(healthy, healthy_yaml(free_port(), db_port))
    swarm.deploy(faulty, faulty_yaml(free_port()))
    return healthy, db_port, faulty


@pytest.fixture(scope="module")
def healthy(swarm: SwarmEngine, stacks: tuple[str, int, str]) -> tuple[str, int]:
    name, db_port, _ = stacks

    def settled() -> bool:
        found = states(swarm, name)
        return len(found) == 2 and all(any(t["State"] == "running" for t in ts) for ts in found.values())

    wait_until(settled, 120, "the healthy swarm stack running")
    return name, db_port


FAULTS: dict[str, Any] = {  # what each faulty service shows once its fault has happened
    "crash": (lambda t: t["State"] == "failed", 2),
    "oom": (lambda t: t["State"] == "failed" and t["ContainerStatus"]["ExitCode"] == 137, 1),
    "childoom": (lambda t: t["State"] == "complete", 1),
    "sick": (lambda t: "unhealthy container" in t.get("Err", ""), 1),
    "big": (lambda t: t["State"] == "pending" and bool(t.get("Err")), 1),
    "pinned": (lambda t: t["State"] == "pending" and bool(t.get("Err")), 1),
    "ghost": (lambda t: t["State"] == "rejected", 1),
    "backend": (lambda t: t["State"] == "running", 1),
    "lost": (lambda t: t["State"] == "running", 1),
}


@pytest.fixture(scope="module")
def faulty(swarm: SwarmEngine, stacks: tuple[str, int, str]) -> str:
    name = stacks[2]

    def waiting() -> list[str]:
        found = states(swarm, name)
        return [s for s, (test, count) in FAULTS.items() if sum(1 for t in found.get(s, []) if test(t)) < count]

    deadline = time.monotonic() + 150
    while waiting() and time.monotonic() < deadline:
        time.sleep(0.5)
    if waiting():
        found = states(swarm, name)
        seen = "; ".join(f"{s}: " + ", ".join(f"{t['State']} {t.get('Err', '')}".strip() for t in found.get(s, []))
                         for s in waiting())
        pytest.fail(f"the faults of {', '.join(waiting())} did not happen within 150 s ({seen})")
    return name


@pytest.fixture
def on_swarm(swarm: SwarmEngine, monkeypatch: pytest.MonkeyPatch) -> Iterator[SwarmEngine]:
    monkeypatch.setenv("DOCKER_HOST", swarm.host)
    yield swarm


def sweep(pytester: pytest.Pytester, config: str, *select: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    """Run the stack and host checks; every output is free of the planted secrets."""
    pytester.makefile(".toml", opscheck=config)
    result = pytester.runpytest(*(SWEEP if not select else (*SWEEP[:5], "-k", *select, *SWEEP[-2:])))
    records = {c["id"]: c for c in json.loads((pytester.path / "out.json").read_text())["checks"]}
    outputs = result.stdout.str() + result.stderr.str() + (pytester.path / "out.json").read_text()
    outputs += (pytester.path / "opscheck-report.html").read_text()
    for secret in (PLANTED_SECRET, "0123456789abcdef", WEAK_JWT):
        assert secret not in outputs
    return result, records


def evidence(record: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in record["evidence"].items())


def test_healthy_swarm_stack_passes(pytester: pytest.Pytester, on_swarm: SwarmEngine,
                                    healthy: tuple[str, int]) -> None:
    name, db_port = healthy
    result, records = sweep(pytester, f'swarm_stack = "{name}"\nstack_db_address = "127.0.0.1:{db_port}"\n'
                                      'required_env = { backend = ["SECRET_KEY", "DOMAIN"] }\n')
    for check in SWARM_CHECKS:
        assert records[check]["outcome"] == "passed", records[check]
    assert "RUNNING ON READY NODES" in records["stack.services_running"]["evidence"]["docker service ls"]
    assert "leader" in records["stack.nodes_ready"]["evidence"]["docker node ls"]
    assert "listening" in records["stack.ports_bound"]["evidence"]["ports"]  # `ports: mode: host`, checked
    assert f"{name}_backend.1." in records["stack.memory_headroom"]["evidence"]["memory"]
    assert "64.0 MiB" in records["stack.memory_headroom"]["evidence"]["memory"]
    assert records["stack.config_current"]["outcome"] == "skipped"  # Compose's config hash: not on a swarm
    assert result.ret == 0


def test_faulty_swarm_stack_fails_each_check(pytester: pytest.Pytester, on_swarm: SwarmEngine, faulty: str) -> None:
    name, refused = faulty, free_port()
    result, records = sweep(
        pytester, f'swarm_stack = "{name}"\nstack_db_address = "127.0.0.1:{refused}"\n'
                  'required_env = { backend = ["SECRET_KEY", "JWT_SECRET", "POSTGRES_SERVER"] }\n')
    failed = {check: records[check]["message"] for check in SWARM_CHECKS if records[check]["outcome"] == "failed"}

    # running vs desired; a completed task of a service is not running
    running = failed["stack.services_running"]
    for service in ("big (0/1 running; big.1 pending: no suitable node (insufficient resources on 1 node))",
                    "childoom (0/1 running; childoom.1 complete (exit 0), not restarted)"):
        assert service in running
    # rejected every few seconds: caught rejected, or on its way up again after the last rejection
    ghost = re.search(r"ghost \(0/1 running; ghost\.1 ([^;]*?)\)(?:, |$)", running)
    assert ghost is not None and ghost.group(1).endswith("No such image: opscheck-missing:nope"), running
    assert f"docker service ps --no-trunc {name}_big" in evidence(records["stack.services_running"])

    # a crash loop is failed tasks of one slot: each restart is a new task
    loop = failed["stack.no_crash_loop"]
    assert f"crash.1 ({name}_crash.1) " in loop and "failed in the last 2 min" in loop
    assert "task: non-zero exit (1)" in loop
    crash_logs = next(v for k, v in records["stack.no_crash_loop"]["evidence"].items()
                      if k.startswith("crash.1: last 100 log lines"))
    assert "KeyError: boom" in crash_logs and "starting with key ***" in crash_logs

    # exit 137 whose container says OOMKilled; and a completed task whose child process was killed
    oom = failed["stack.no_oom_kill"]
    assert oom.startswith("killed by the OOM killer: ")
    assert "childoom (1 task" in oom and "complete (exit 0): a process in it was killed" in oom
    assert "oom (" in oom and "task: non-zero exit (137)" in oom
    assert "memory limit 16.0 MiB" in records["stack.no_oom_kill"]["evidence"]["oom"]

    # Swarm kills an unhealthy container and starts another
    health = failed["stack.healthchecks"]
    assert "sick: the swarm killed" in health and "dockerexec: unhealthy container" in health
    assert "database unreachable" in records["stack.healthchecks"]["evidence"]["sick: last healthcheck outputs"]

    # the scheduler's reasons, quoted
    scheduled = failed["stack.tasks_scheduled"]
    assert "big.1 pending for " in scheduled and ": no suitable node (insufficient resources on 1 node)" in scheduled
    assert "pinned.1 pending" in scheduled and "scheduling constraints not satisfied" in scheduled
    assert "ghost.1 rejected " in scheduled and "No such image: opscheck-missing:nope" in scheduled

    # Compose's diagnoses that hold on a swarm: the environment, a port, exec in the container on this engine
    env = failed["stack.required_env"]
    assert f"backend ({name}_backend.1." in env and "SECRET_KEY holds a placeholder value" in env
    assert "POSTGRES_SERVER is not set" in env
    assert "publishes port" in failed["stack.ports_bound"] and f"lost ({name}_lost.1." in failed["stack.ports_bound"]
    assert failed["stack.backend_reaches_db"].endswith(f"cannot connect to 127.0.0.1:{refused}: connection refused")

    # logs through the manager: the crash loop's failed tasks are read too
    logs = failed["stack.logs_clean"]
    assert "crash: " in logs and "matching line(s)" in logs
    lines = records["stack.logs_clean"]["evidence"]["crash: matching lines"]
    assert "Traceback (most recent call last)" in lines and "crash.1." in lines and "starting with key ***" in lines

    assert set(SWARM_CHECKS) - set(failed) == {"stack.memory_headroom", "stack.cpu", "host.disk_free",
                                               "stack.nodes_ready"}
    # the resolutions in Swarm terms, for this stack
    for check in SWARM_CHECKS:
        assert "docker compose" not in records[check]["resolution"], check
    assert f"docker stack ps --no-trunc {name}" in records["stack.services_running"]["resolution"]
    # Paste-ready: the failing service written in, no <service> left.
    assert f"docker service logs --timestamps --tail 100 {name}_crash" in records["stack.no_crash_loop"]["resolution"]
    assert "<service>" not in records["stack.no_crash_loop"]["resolution"]
    assert f"docker stack deploy -c docker-compose.yml {name}" in records["stack.tasks_scheduled"]["resolution"]
    result.stdout.fnmatch_lines(["*P1 CRITICAL:*checks failing*"])
    assert result.ret == 1


def test_a_crash_looping_or_rejected_service_is_the_root_cause(pytester: pytest.Pytester, on_swarm: SwarmEngine,
                                                              faulty: str) -> None:
    backend = f"http://127.0.0.1:{free_port()}"
    for service, root in (("crash", "stack.no_crash_loop"), ("ghost", "stack.services_running")):
        _, records = sweep(pytester, f'swarm_stack = "{faulty}"\nbackend_service = "{service}"\n'
                                     f'backend_url = "{backend}"\n', "services_running or no_crash_loop or health")
        assert records["backend.health"]["outcome"] == "failed"
        assert records["backend.health"]["caused_by"] == root, (service, records["backend.health"])


def test_the_wait_gives_up_at_once_on_a_crash_loop(pytester: pytest.Pytester, on_swarm: SwarmEngine,
                                                  faulty: str) -> None:
    """After a deploy, `--opscheck-wait` does not wait for a slot whose tasks keep failing."""
    pytester.makefile(".toml", opscheck=f'swarm_stack = "{faulty}"\n')
    started = time.monotonic()
    pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "--opscheck-wait", "90",
                       "-k", "no_crash_loop", "--opscheck-json", "out.json")
    # Waiting would take the whole 90 s; the record's one attempt says it did not retry at all.
    assert time.monotonic() - started < 90
    record = json.loads((pytester.path / "out.json").read_text())["checks"][0]
    assert record["outcome"] == "failed" and record["attempts"] == 1
    assert "(not waited for: service " in record["message"] and "failed in the last 2 min" in record["message"]


def test_an_engine_outside_any_swarm_is_one_cause(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                 swarm: SwarmEngine) -> None:
    """The shared engine is not in a swarm (only read here): every stack check fails with one line saying where
    to point instead."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{DOCKER_SOCKET}")
    import docker

    shared = docker.DockerClient(base_url=f"unix://{DOCKER_SOCKET}", timeout=10)
    try:
        if shared.info()["Swarm"]["LocalNodeState"] != "inactive":
            pytest.skip("the shared engine is part of a swarm here")
    except docker.errors.DockerException as exc:
        pytest.skip(f"no shared engine to read: {exc}")
    finally:
        shared.close()
    _, records = sweep(pytester, 'swarm_stack = "app"\n')
    messages = {records[c]["message"] for c in SWARM_CHECKS}
    assert messages == {f"docker: the Docker engine at unix://{DOCKER_SOCKET} is not part of a swarm (swarm "
                        "inactive): point DOCKER_HOST at a manager of the swarm that runs stack app"}
    assert [c for c in SWARM_CHECKS if records[c]["caused_by"] is None] == ["stack.services_running"]
