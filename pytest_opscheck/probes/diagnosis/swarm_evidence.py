"""The evidence of the Swarm diagnoses: `docker service ps`, `docker service ls` and `docker node ls` as tables,
the commands to paste, a log excerpt around its matching lines."""

from __future__ import annotations

import time

from ..resource.stack import _ago
from ..resource.swarm import SwarmStack
from ..resource.swarm_model import Replicas, Service, Task
from ..result import Evidence, table
from .common import size


def task_table(stack: SwarmStack, tasks: list[Task]) -> str:
    """`docker service ps --no-trunc`: newest first, the error in full."""
    now = time.time()
    rows = [
        [t.label, t.id[:12], stack.where(t) if t.node_id else "-", t.desired,
         f"{t.state} {_ago(now - t.timestamp)}" if t.timestamp else t.state,
         "-" if t.exit_code is None else str(t.exit_code), t.err or "-"]
        for t in sorted(tasks, key=lambda t: (t.service, t.slot, -t.created))
    ]
    return table(["NAME", "TASK", "NODE", "DESIRED", "CURRENT", "EXIT", "ERROR"], rows)


def service_table(stack: SwarmStack, counts: dict[str, Replicas]) -> str:
    """`docker service ls`, with the replicas counted on ready nodes beside what the engine says."""
    rows = []
    for service in stack.swarm_services:
        c = counts[service.short]
        engine = f"{service.engine_counts[0]}/{service.engine_counts[1]}" if service.engine_counts else "-"
        shown = f"{c.completed}/{c.desired} completed" if service.is_job else f"{c.running}/{c.desired}"
        rows.append([service.name, service.mode, shown, engine])
    return table(["NAME", "MODE", "RUNNING ON READY NODES", "THE ENGINE SAYS"], rows)


def node_table(stack: SwarmStack) -> str:
    """`docker node ls`, with each node's address, resources and how many of the stack's tasks it runs."""
    rows = []
    for node in stack.nodes:
        here = sum(1 for t in stack.tasks if t.node_id == node.id and t.state == "running")
        manager = ("leader" if node.leader else node.reachability) if node.role == "manager" else "-"
        mark = " *" if node.id == stack.local_node else ""
        rows.append([node.hostname + mark, node.addr or "-", node.role, node.state, node.availability, manager,
                     f"{node.cpus:g}", size(node.memory) if node.memory else "-", str(here)])
    return table(["HOSTNAME", "ADDRESS", "ROLE", "STATUS", "AVAILABILITY", "MANAGER", "CPUS", "MEMORY", "TASKS"], rows)


def steps(stack: SwarmStack, services: list[str], *commands: str) -> Evidence:
    """Swarm commands for the failing services, ready to paste (`{s}` is the service's full name)."""
    lines = [c.format(s=stack.full_name(s), stack=stack.name) for s in services for c in commands]
    return {"commands to run": "\n".join(dict.fromkeys(lines))} if lines else {}


def own(stack: SwarmStack, service: Service, tasks: list[Task] | None = None) -> list[Task]:
    """The service's tasks (of `tasks`, default the stack's as opened)."""
    return [t for t in (stack.tasks if tasks is None else tasks) if t.service == service.short]
