"""The stack diagnoses of a Docker Swarm stack: the two of Swarm alone (`nodes_ready`, `tasks_scheduled`) and,
through `swarm_variant`, the Swarm variants of the Compose diagnoses where those do not hold.

A Compose diagnosis decorated with `@swarm_variant` runs as it is on a Compose project and is replaced by its
variant of the same name (in `VARIANTS`) on a `SwarmStack`: the checks call one function whatever the backend.
Where a Compose diagnosis holds on a swarm (the environment, exec and stats of the containers on this engine,
the engine's disk), it runs unchanged on the `Container`s the `SwarmStack` gives it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import ParamSpec

from ...model import Fact
from .. import facts
from ..resource.stack import CRASH_WINDOW, Stack, _ago, _span
from ..resource.swarm import SwarmStack
from ..resource.swarm_model import COMING_UP, Replicas, Service, Task, current, node_line, replicas, slots
from ..result import Evidence, Finding
from . import swarm_tasks
from .swarm_evidence import node_table, own, service_table, steps, task_table

P = ParamSpec("P")
# A task pending without the scheduler's reason is still being placed; after this long it is reported anyway.
PENDING_GRACE = 30.0


def swarm_variant(compose: Callable[P, Finding]) -> Callable[P, Finding]:
    """`compose` on a Compose stack; on a `SwarmStack` (its first argument), the variant of the same name."""

    @functools.wraps(compose)
    def dispatch(*args: P.args, **kwargs: P.kwargs) -> Finding:
        stack = args[0] if args else kwargs.get("stack")
        if isinstance(stack, SwarmStack):
            variant: Callable[..., Finding] = VARIANTS[compose.__name__]
            return variant(*args, **kwargs)
        return compose(*args, **kwargs)

    return dispatch


def _swarm(stack: Stack) -> SwarmStack | Finding:
    if isinstance(stack, SwarmStack):
        return stack
    return Finding.failed(f"{stack.kind} {stack.name} is not a Swarm stack: this check reads a swarm (swarm_stack)")


def nodes_ready(stack: Stack) -> Finding:
    """Every node of the swarm is ready (its heartbeat heard) and every manager reachable; a lost node is named
    with the stack's tasks it ran, which are not counted as running."""
    swarm = _swarm(stack)
    if isinstance(swarm, Finding):
        return swarm
    evidence: Evidence = {"docker node ls": node_table(swarm)}
    problems = []
    bad = []
    for node in swarm.nodes:
        why = []
        if not node.ready and node.availability == "drain":  # taken out on purpose: said, not failed
            evidence[f"node {node.where}"] = f"drained and {node.state}: no task is placed there"
        elif not node.ready:
            why.append(f"is {node.state}" + (f": {node.message}" if node.message else ""))
        if node.role == "manager" and node.reachability not in ("", "reachable"):
            why.append(f"is a manager the others find {node.reachability}")
        if not why:
            continue
        stranded = [t.label for t in swarm.tasks if t.node_id == node.id and t.state == "running"]
        problems.append(f"{node_line(node)} " + " and ".join(why)
                        + (f"; its tasks, not counted as running: {', '.join(sorted(stranded))}" if stranded else ""))
        bad.append(node)
    drained = [n.where for n in swarm.nodes if n.ready and n.availability != "active"]
    if drained:
        evidence["not taking new tasks (availability)"] = "\n".join(drained)
    if problems:
        evidence["commands to run"] = "\n".join(
            ["docker node ls", *(f"docker node ps {n.id[:12]}" for n in bad),
             *(f"docker node inspect --format '{{{{json .Status}}}}' {n.id[:12]}" for n in bad),
             f"docker stack ps --no-trunc {swarm.name}"])
        return Finding.failed("; ".join(problems), evidence)
    return Finding.passed(evidence)


def tasks_scheduled(stack: Stack) -> Finding:
    """No slot of the stack whose task the swarm cannot place (pending with the scheduler's reason) or keeps
    rejecting (a missing image); the swarm's reason quoted."""
    swarm = _swarm(stack)
    if isinstance(swarm, Finding):
        return swarm
    now = time.time()
    problems: list[str] = []
    failing: list[str] = []
    evidence: Evidence = {}
    for (service, _), history in sorted(slots(swarm.tasks).items()):
        task = current(history)
        if task.running or task.desired == "shutdown":
            continue
        said = []
        if task.state == "pending" and (task.err or now - task.timestamp > PENDING_GRACE):
            said.append(f"pending for {_span(now - task.timestamp)}: {task.err or task.message}")
        rejected = [t for t in history if t.state == "rejected" and now - t.timestamp < CRASH_WINDOW]
        if rejected:
            said.append(f"rejected {len(rejected)}x in the last {_span(CRASH_WINDOW)}, the last "
                        f"{_ago(now - rejected[-1].timestamp)} on {node_line(swarm.node(rejected[-1].node_id))}: "
                        f"{rejected[-1].err}")
        if said:
            problems.append(f"{task.label} " + "; ".join(said))
            failing.append(service)
            evidence[f"{task.label}: tasks"] = task_table(swarm, history)
    if not problems:
        return Finding.passed({"tasks": f"{len(swarm.current_tasks())} slots placed"})
    evidence["docker node ls"] = node_table(swarm)
    evidence |= steps(swarm, sorted(set(failing)), "docker service ps --no-trunc {s}")
    evidence["commands to run"] += "\ndocker node ls"
    return Finding.failed("; ".join(problems), evidence)


def services_running(stack: SwarmStack) -> Finding:
    """Every service has its replicas running on ready nodes (a global service one per ready node); a job its
    completions. Tasks on a node that is down are not counted, whatever `docker service ls` says."""
    nodes = {n.id: n for n in stack.nodes}
    counts = {s.short: replicas(s, stack.tasks, nodes) for s in stack.swarm_services}
    evidence: Evidence = {"docker service ls": service_table(stack, counts)}
    if not stack.swarm_services:
        return Finding.failed(
            f"no services found for {stack.kind} {stack.name} (is the {stack.noun} name right? {stack.list_command})",
            evidence,
        )
    down: list[str] = []
    reasons = []
    for service in stack.swarm_services:
        c = counts[service.short]
        if service.is_job:
            failed = c.completed < max(1, c.desired) and not c.running and not any(
                t.state in COMING_UP and not t.stuck for t in c.missing)
            if failed:
                down.append(service.short)
                reasons.append(f"{service.short} (job: {c.completed}/{c.desired} completed{_missing(stack, c)})")
            continue
        if c.running < c.desired:
            down.append(service.short)
            reasons.append(f"{service.short} ({c.running}/{c.desired} running{_missing(stack, c)})")
    if down:
        evidence["docker service ps"] = task_table(
            stack, [t for s in stack.swarm_services if s.short in down for t in own(stack, s)
                    if t.desired != "shutdown" or t.state == "running"])
        evidence |= steps(stack, down, "docker service ps --no-trunc {s}",
                          "docker service logs --timestamps --tail 100 {s}")
        evidence["commands to run"] += f"\ndocker stack deploy -c docker-compose.yml {stack.name}   # once fixed"
        return Finding.failed(f"not running: {', '.join(reasons)}", evidence,
                              facts=tuple(Fact(facts.NOT_RUNNING, s, r) for s, r in zip(down, reasons, strict=True)))
    return Finding.passed(evidence)


def _missing(stack: SwarmStack, counts: Replicas) -> str:
    """Why the missing replicas are missing, in a few words each."""
    said = [f"{t.label} on {node_line(node)}, which is {node.state if node else 'gone from the swarm'}"
            for t in counts.lost for node in [stack.node(t.node_id)]]
    said += [_task_words(stack, t) for t in counts.missing if t.id not in {x.id for x in counts.lost}]
    return "".join(f"; {s}" for s in said)


def _task_words(stack: SwarmStack, task: Task) -> str:
    """What a slot's current task does, and when it is on its way up again, how the slot's last task ended."""
    words = f"{task.label} {task.state}" + (f" (exit {task.exit_code})" if task.exit_code is not None else "")
    if task.state == "ready" and task.desired == "ready":
        words = f"{task.label} waiting out its restart delay"
    words += f": {task.err}" if task.err else ""
    if task.desired == "shutdown":
        return words + ", not restarted"
    history = slots(own(stack, stack.service(task.service) or _nameless(task))).get((task.service, task.slot), [])
    ended = [t for t in history if t.err and t is not task and time.time() - t.timestamp < CRASH_WINDOW]
    if ended and not task.err:
        words += f", after {ended[-1].state} {_ago(time.time() - ended[-1].timestamp)}: {ended[-1].err}"
    return words


def _nameless(task: Task) -> Service:
    return Service("", task.service, task.service, "replicated", None)


VARIANTS: dict[str, Callable[..., Finding]] = {
    "services_running": services_running,
    "no_crash_loop": swarm_tasks.no_crash_loop,
    "no_oom_kill": swarm_tasks.no_oom_kill,
    "healthchecks": swarm_tasks.healthchecks,
    "logs_clean": swarm_tasks.logs_clean,
}
