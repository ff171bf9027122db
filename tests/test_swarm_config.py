"""Swarm without a swarm: the config key, the Swarm checks skipping on Compose, the rules over task and node
values as a manager lists them, and the resolutions in Swarm terms. No engine needed (tier: unit and plugin)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_opscheck.config import ConfigError, settings_from_table
from pytest_opscheck.probes.resource.swarm import SwarmStack
from pytest_opscheck.probes.resource.swarm_model import Node, Service, Task, replicas, slot_crash_loop, snapshot_of
from pytest_opscheck.swarm_steps import swarm_terms

SWEEP = ("--opscheck", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-k", "stack. or host.",
         "--opscheck-json", "out.json")
NOW = 1_800_000_000.0


@pytest.mark.parametrize("other", ["compose_project", "compose_file"])
def test_swarm_stack_and_a_compose_key_are_one_usage_error(tmp_path: Path, other: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_table({"swarm_stack": "app", other: "x"}, tmp_path / "opscheck.toml", environ={})
    assert str(info.value) == (f"{tmp_path / 'opscheck.toml'}: swarm_stack and {other} are both set: the stack is "
                               "either a Swarm stack or a Compose project, keep one of them")
    assert settings_from_table({"swarm_stack": "app"}, tmp_path / "opscheck.toml", environ={}).swarm_stack == "app"


def test_both_kinds_set_exit_4(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", opscheck='swarm_stack = "app"\ncompose_project = "app"\n')
    result = pytester.runpytest(*SWEEP)
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*swarm_stack and compose_project are both set*"])


def test_on_compose_the_swarm_checks_skip(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    pytester.makefile(".toml", opscheck='compose_project = "app"\n')
    pytester.runpytest(*SWEEP)
    records = {r["id"]: r for r in json.loads((pytester.path / "out.json").read_text())["checks"]}
    for check in ("stack.nodes_ready", "stack.tasks_scheduled"):
        # Not a gap in the sweep's coverage: a Compose project has no Swarm nodes or scheduler to check.
        assert (records[check]["outcome"], records[check]["message"]) == (
            "skipped", "applies to a Swarm stack only (this stack is a Compose project)")
    assert records["stack.services_running"]["outcome"] == "failed"


def test_a_swarm_engine_out_of_reach_is_one_cause(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    pytester.makefile(".toml", opscheck='swarm_stack = "app"\n')
    pytester.runpytest(*SWEEP)
    records = json.loads((pytester.path / "out.json").read_text())["checks"]
    stack = [r for r in records if r["id"] != "stack.config_current"]
    assert {r["outcome"] for r in stack} == {"failed"}
    assert "stack.nodes_ready" in {r["id"] for r in stack}
    assert [r["id"] for r in stack if r["caused_by"] is None] == ["stack.services_running"]
    assert {r["message"] for r in stack} == {
        "docker: no Docker engine at unix:///nonexistent/docker.sock: is dockerd running? (or set DOCKER_HOST)"}


def task(slot: str, state: str, ago: float, desired: str = "shutdown", err: str = "", node: str = "n1",
         service: str = "web", created: float | None = None) -> Task:
    return Task(f"t{slot}{state}{ago}", service, slot, node, desired, state, "", err, None, "c", NOW - ago,
                created if created is not None else NOW - ago)


def test_a_crash_loop_is_failed_tasks_of_one_slot_within_the_window() -> None:
    history = [task("1", "failed", 30, err="task: non-zero exit (1)"),
               task("1", "failed", 10, err="task: non-zero exit (1)"),
               task("1", "starting", 2, desired="running")]
    assert slot_crash_loop(history, NOW) == ("2 tasks failed in the last 2 min, the last 10 s ago: task: non-zero "
                                             "exit (1); now starting (2 s ago)")
    assert slot_crash_loop([task("1", "failed", 600, err="x"), task("1", "running", 599, "running")], NOW) is None
    capped = [task("1", "failed", 10 + i, err="task: non-zero exit (1)") for i in range(5)]
    assert slot_crash_loop(capped, NOW, kept=5).startswith("5+ tasks failed")  # the history keeps 5: a floor


def test_running_replicas_are_counted_on_ready_nodes_only() -> None:
    """The engine says 2/2 while node n2 is down; the replica there does not count, its replacement is pending."""
    nodes = {"n1": Node("n1", "a", "manager", "ready", "active", "10.0.0.1"),
             "n2": Node("n2", "b", "worker", "down", "active", "10.0.0.2", "heartbeat failure")}
    web = Service("s", "app_web", "web", "replicated", 2, engine_counts=(2, 2))
    tasks = [task("1", "running", 100, "running"), task("2", "running", 100, "shutdown", node="n2"),
             task("2", "pending", 5, "running", err="no suitable node (max replicas per node limit exceed)", node="")]
    counts = replicas(web, tasks, nodes)
    assert (counts.running, counts.desired) == (1, 2)
    assert [t.slot for t in counts.lost] == ["2"] and [t.state for t in counts.missing] == ["pending"]
    state = snapshot_of([web], tasks, list(nodes.values()), NOW).services["web"]
    assert state.state == "stopped"
    assert "web.2 on a node that is down" in state.detail and "max replicas per node" in state.detail


def test_tasks_on_their_way_up_are_not_a_stopped_service() -> None:
    """Right after `docker stack deploy`: a wait must not give up on a task still preparing."""
    nodes = [Node("n1", "a", "manager", "ready", "active", "10.0.0.1")]
    web = Service("s", "app_web", "web", "replicated", 1)
    assert snapshot_of([web], [task("1", "preparing", 1, "running")], nodes, NOW).services["web"].state == "running"
    rejected = [task("1", "rejected", 1, "ready", err="No such image: x:1")]
    assert snapshot_of([web], rejected, nodes, NOW).services["web"].state == "stopped"


def test_evidence_commands_are_swarm_commands() -> None:
    stack = SwarmStack("app", None, 5.0, swarm_services=[Service("s", "app_web", "web", "replicated", 1)])
    assert stack.command("logs web --tail=100") == "docker service logs --timestamps --tail 100 app_web"
    assert stack.command("ps web") == "docker service ps --no-trunc app_web"
    assert stack.command("ps") == "docker stack ps --no-trunc app"
    assert stack.command("up -d web") == "docker stack deploy -c docker-compose.yml app"
    assert stack.command("restart web   # frees memory for now") == \
        "docker service update --force app_web   # frees memory for now"


def test_resolutions_in_swarm_terms() -> None:
    text = ("See it:\n  {compose} ps\n  {compose} logs <service> --tail=100\nthen: {compose} up -d <service>\n"
            "Once gone:  {compose} up -d {backend}   (or {compose} restart {backend})\n"
            "  {compose} exec <service> env | cut -d= -f1\n  {compose} build --no-cache {frontend}")
    assert swarm_terms(text, "app") == (
        "See it:\n  docker stack ps --no-trunc app\n  docker service logs --timestamps --tail 100 app_<service>\n"
        "then: docker stack deploy -c docker-compose.yml app\n"
        "Once gone:  docker stack deploy -c docker-compose.yml app   (or docker service update --force app_{backend})\n"
        "  docker exec $(docker ps -q -f label=com.docker.swarm.service.name=app_<service> | head -n 1) env "
        "| cut -d= -f1\n  {compose} build --no-cache {frontend}\n"
        "On a swarm, docker exec runs on the node that runs the task: docker service ps --no-trunc app_<service> "
        "names it.")
    assert swarm_terms("docker node ps <node> ; docker stack ps <stack>", "app") == \
        "docker node ps <node> ; docker stack ps app"

