"""The Swarm backend against the tests' own swarm (`swarmbed`): a stack's logs come through the manager per task
and are ordered here by time, secrets masked; a stack that is not there is said so."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest
from swarmbed import SwarmEngine, swarm, wait_until

from pytest_opscheck.config import Settings
from pytest_opscheck.probes.diagnosis import stack as diagnose
from pytest_opscheck.probes.resource.swarm import SwarmStack, open_swarm

__all__ = ["swarm"]

SECRET = "PLANTED-talk-secret-0123456789"
TALK = f"""version: "3.8"
services:
  talk:
    image: ${{BUSYBOX}}
    stop_grace_period: 1s
    networks: [hostnet]
    environment: {{API_TOKEN: "{SECRET}"}}
    command: sh -c 'i=0; while [ $$i -lt 10 ]; do echo "line $$i token $$API_TOKEN"; i=$$((i+1)); sleep 0.3; done;
      sleep 3600'
    deploy: {{replicas: 2}}
"""


def seconds(at: str) -> float:
    """An RFC 3339 time (nanoseconds, `Z`) as seconds since the epoch."""
    day, _, rest = at.rstrip("Z").partition("T")
    clock, _, fraction = rest.partition(".")
    return datetime.fromisoformat(f"{day}T{clock}+00:00").timestamp() + float(f"0.{fraction or 0}")


@pytest.fixture(scope="module")
def talk(swarm: SwarmEngine) -> str:
    name = swarm.deploy(f"talk{uuid.uuid4().hex[:6]}", TALK)
    wait_until(lambda: sum(1 for t in swarm.tasks(name) if t["Status"]["State"] == "running") == 2, 60,
               "both replicas of talk running")
    return name


@pytest.fixture
def opened(swarm: SwarmEngine, talk: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SwarmStack]:
    monkeypatch.setenv("DOCKER_HOST", swarm.host)
    stack = open_swarm(Settings(swarm_stack=talk, timeout=5.0))
    try:
        yield stack
    finally:
        stack.close()


def test_service_logs_are_per_task_interleaved_by_time_and_scrubbed(opened: SwarmStack) -> None:
    wait_until(lambda: len(opened.service_logs("talk", 100)) >= 20, 20, "ten lines from each replica")
    lines = opened.service_logs("talk", 100)
    assert [line.at for line in lines] == sorted(line.at for line in lines)
    tasks = [line.task_id for line in lines]
    switches = sum(1 for a, b in itertools.pairwise(tasks) if a != b)
    assert len(set(tasks)) == 2
    # Where the two replicas wrote at the same time, their lines come in turn, as they were written. (How much
    # their runs overlap is the scheduler's: a replica started seconds after the other under load overlaps less,
    # so the overlap is measured, not assumed.)
    spans = [(min(seconds(x.at) for x in lines if x.task_id == t), max(seconds(x.at) for x in lines if x.task_id == t))
             for t in set(tasks)]
    if min(end for _, end in spans) - max(start for start, _ in spans) > 1.0:
        assert switches >= 3, [(x.task_id[:6], x.at) for x in lines]
    assert all(line.text.endswith("token ***") for line in lines)
    one = opened.current_tasks()[0]
    assert {line.task_id for line in opened.service_logs("talk", 100, {one.id})} == {one.id}
    assert opened.of_service("talk")[0].logs(3).splitlines() == [
        line.text for line in opened.service_logs("talk", 3, {opened.of_service("talk")[0].attrs["Config"]["Labels"]
                                                               ["com.docker.swarm.task.id"]})]


def test_a_stack_that_is_not_there(swarm: SwarmEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", swarm.host)
    stack = open_swarm(Settings(swarm_stack="nope", timeout=5.0))
    try:
        finding = diagnose.services_running(stack)
    finally:
        stack.close()
    assert finding.cause == "no services found for Swarm stack nope (is the stack name right? docker stack ls)"
