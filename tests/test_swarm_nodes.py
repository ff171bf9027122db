"""Beyond one node (opt-in, OPSCHECK_TWO_NODE_SWARM=1): a manager and a worker in network namespaces of the
test's own. A worker's engine says to point at a manager; a container on the other node is described, never
exec'd into or sampled, and says where it runs; a lost node fails `stack.nodes_ready` and its tasks are not
counted as running, whatever `docker service ls` says."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import pytest
from swarmbed import TwoNodes, two_node_swarm, wait_until

from pytest_opscheck.config import Settings
from pytest_opscheck.probes.diagnosis import host, network
from pytest_opscheck.probes.diagnosis import stack as diagnose
from pytest_opscheck.probes.resource.swarm import RemoteTask, _swarm_cause, open_swarm
from pytest_opscheck.probes.result import TargetUnreachable

__all__ = ["two_node_swarm"]

SECRET = "PLANTED-far-secret-0123456789abcdef"
STACK = f"""version: "3.8"
services:
  web:
    image: ${{BUSYBOX}}
    stop_grace_period: 1s
    networks: [hostnet]
    command: sleep 3600
    deploy: {{replicas: 2, placement: {{max_replicas_per_node: 1}}}}
  far:
    image: ${{BUSYBOX}}
    stop_grace_period: 1s
    networks: [hostnet]
    environment: {{SECRET_KEY: "{SECRET}"}}
    command: sh -c 'echo far away; sleep 3600'
    deploy: {{placement: {{constraints: ["node.role == worker"]}}}}
"""


@pytest.fixture(scope="module")
def nodes(two_node_swarm: TwoNodes) -> tuple[TwoNodes, str]:
    name = two_node_swarm.manager.deploy(f"two{uuid.uuid4().hex[:6]}", STACK)

    def placed() -> bool:
        running = [t for t in two_node_swarm.manager.tasks(name) if t["Status"]["State"] == "running"]
        return len(running) == 3 and len({t["NodeID"] for t in running}) == 2

    wait_until(placed, 90, "web on both nodes and far on the worker")
    return two_node_swarm, name


def test_a_worker_says_to_point_at_a_manager(nodes: tuple[TwoNodes, str], monkeypatch: pytest.MonkeyPatch) -> None:
    swarm, name = nodes
    monkeypatch.setenv("DOCKER_HOST", swarm.worker.host)
    with pytest.raises(TargetUnreachable) as info:
        open_swarm(Settings(swarm_stack=name, timeout=5.0))
    assert info.value.cause == (f"the Docker engine at {swarm.worker.host} is a swarm worker, not a manager: point "
                                f"DOCKER_HOST at a manager's engine (managers: {swarm.addresses[0]})")
    import docker

    client = swarm.worker.client()
    try:  # the worker's own answer to a listing: 503, "This node is not a swarm manager"
        with pytest.raises(docker.errors.APIError) as answer:
            client.api.services()
    finally:
        client.close()
    assert answer.value.response.status_code == 503
    assert _swarm_cause(answer.value, name) == (
        f"the Docker engine at {swarm.worker.host} is not a swarm manager (This node is not a swarm manager): "
        f"point DOCKER_HOST at a manager of the swarm that runs stack {name}")


def test_a_container_on_the_other_node_says_where_it_runs(nodes: tuple[TwoNodes, str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    swarm, name = nodes
    monkeypatch.setenv("DOCKER_HOST", swarm.manager.host)
    stack = open_swarm(Settings(swarm_stack=name, timeout=5.0))
    try:
        far = stack.of_service("far")[0]
        assert isinstance(far.handle, RemoteTask)
        where = f"swarm-worker ({swarm.addresses[1]})"
        assert stack.stats_or_reason(far) == (f"runs on node {where}, not on the engine this sweep talks to: "
                                              f"docker stats --no-stream {far.name} there")
        reach = network.backend_reaches_db(stack, "far", "127.0.0.1:9", 2.0)
        assert reach.cause == (f"cannot run a probe inside {far.name}: NotOnThisEngine: it runs on node {where}, "
                               "not on the engine this sweep talks to: run the sweep with DOCKER_HOST on that node's "
                               f"engine to test from inside it (docker service ps {name}_far)")
        assert far.logs(10) == "far away"  # through the manager
        assert diagnose.required_env(stack, {"far": ["SECRET_KEY"]}).ok  # from the task's spec
        memory = host.memory_headroom(stack, 90.0)
        assert f"{far.name}: runs on node {where}" in memory.evidence["not sampled"]
        assert memory.ok  # the web replica on the manager was sampled
        assert stack.of_service("web")[0].handle is not None and not isinstance(stack.of_service("web")[0].handle,
                                                                                  RemoteTask)
    finally:
        stack.close()


def test_a_lost_node_fails_nodes_ready_and_its_tasks_do_not_count(
    nodes: tuple[TwoNodes, str], pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    swarm, name = nodes
    swarm.lose_worker()
    began = time.monotonic()

    def down() -> bool:
        client = swarm.manager.client()
        try:
            return any(n["Status"]["State"] == "down" for n in client.api.nodes())
        finally:
            client.close()

    wait_until(down, 60, "the manager seeing the worker down")
    lost_after = time.monotonic() - began
    monkeypatch.setenv("DOCKER_HOST", swarm.manager.host)
    pytester.makefile(".toml", opscheck=f'swarm_stack = "{name}"\ntimeout = 2\n')
    started = time.monotonic()
    pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-k", "stack.",
                       "--opscheck-json", "out.json")
    swept = time.monotonic() - started
    records: dict[str, Any] = {c["id"]: c for c in json.loads((pytester.path / "out.json").read_text())["checks"]}
    where = f"swarm-worker ({swarm.addresses[1]})"
    assert records["stack.nodes_ready"]["outcome"] == "failed"
    assert records["stack.nodes_ready"]["message"].startswith(f"node {where} is down: heartbeat failure")
    running = records["stack.services_running"]
    assert running["outcome"] == "failed"
    assert re.search(rf"web \(1/2 running; web\.[12] on node {re.escape(where)}, which is down; ", running["message"])
    assert "far (0/1 running" in running["message"]
    assert "2/2" in running["evidence"]["docker service ls"]  # what the engine says, while one replica is lost
    assert "max replicas per node" in records["stack.tasks_scheduled"]["message"]
    assert SECRET not in (pytester.path / "out.json").read_text()
    # A probe left to the Docker SDK's own 60 s timeout on the lost node would take longer than this.
    assert swept < 60, f"a sweep with a lost node took {swept:.1f} s"
    print(f"node down after {lost_after:.1f} s; sweep {swept:.1f} s")
