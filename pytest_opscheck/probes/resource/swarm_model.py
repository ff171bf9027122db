"""What a swarm says of a stack, as plain values: its services, their tasks, the swarm's nodes, and the rules the
Swarm diagnoses and the stack snapshot share (a crash loop, the replicas running on ready nodes).

Facts of Swarm these follow (seen on Docker 20.10):
- each restart is a new task with a new container (`RestartCount` stays 0, the container has no restart
  policy): a crash loop is failed tasks of one slot within `CRASH_WINDOW`; the swarm keeps the last
  `TaskHistoryRetentionLimit` tasks of a slot (5 by default);
- `ServiceStatus.RunningTasks` keeps counting the tasks of a node that is down: running replicas are counted
  here on ready nodes only, a global service against its ready nodes;
- a task waiting out its restart delay sits in desired state `ready`; one whose healthcheck has not passed
  yet sits in `starting`; neither is running.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .stack import CRASH_WINDOW, ServiceState, StackSnapshot, _ago, _span, _timestamp

STACK_LABEL = "com.docker.stack.namespace"
# States of a task on its way to running: waiting here is not a fault yet.
COMING_UP = frozenset({"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting"})
DEFAULT_HISTORY = 5


@dataclass(frozen=True)
class Node:
    """One node of the swarm, as the manager lists it."""

    id: str
    hostname: str
    role: str  # manager | worker
    state: str  # ready | down | unknown | disconnected
    availability: str  # active | pause | drain
    addr: str
    message: str = ""
    reachability: str = ""  # a manager's: reachable | unreachable | unknown
    leader: bool = False
    cpus: float = 0.0
    memory: int = 0  # bytes

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def where(self) -> str:
        """How a message names the node: its hostname and address (several nodes may share a hostname)."""
        return f"{self.hostname} ({self.addr})" if self.addr else self.hostname


def node_line(node: Node | None) -> str:
    """A node as a message names it: "node web-2 (10.0.0.2)"."""
    return "no node" if node is None else f"node {node.where}"


@dataclass(frozen=True)
class Task:
    """One task of a service: one run of one container (a restart is a new task)."""

    id: str
    service: str  # the service's name within the stack: "web" of stack "app" (service "app_web")
    slot: str  # a replica's slot ("1"), or the node id of a global service's task
    node_id: str
    desired: str
    state: str
    message: str
    err: str
    exit_code: int | None
    container_id: str
    timestamp: float  # when it reached its current state
    created: float
    env: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """As `docker service ps` names it, less the stack: "web.1"."""
        return f"{self.service}.{self.slot}"

    @property
    def running(self) -> bool:
        return self.state == "running" and self.desired == "running"

    @property
    def stuck(self) -> bool:
        """Pending with the scheduler's reason, or rejected: waiting alone will not start it."""
        return (self.state == "pending" and bool(self.err)) or self.state == "rejected"

    @property
    def why(self) -> str:
        """The task's reason in the swarm's words: its error, else its message."""
        return self.err or self.message or self.state


@dataclass(frozen=True)
class Service:
    """One service of the stack, as the manager lists it."""

    id: str
    name: str  # "app_web"
    short: str  # "web"
    mode: str  # replicated | global | replicated-job | global-job
    replicas: int | None  # a replicated service's (a job's total completions)
    spec: dict[str, Any] = field(default_factory=dict)
    engine_counts: tuple[int, int] | None = None  # ServiceStatus (RunningTasks, DesiredTasks), as the engine says

    @property
    def container_spec(self) -> dict[str, Any]:
        return dict((self.spec.get("TaskTemplate") or {}).get("ContainerSpec") or {})

    @property
    def memory_limit(self) -> int:
        resources = (self.spec.get("TaskTemplate") or {}).get("Resources") or {}
        return int((resources.get("Limits") or {}).get("MemoryBytes") or 0)

    @property
    def constrained(self) -> bool:
        placement = (self.spec.get("TaskTemplate") or {}).get("Placement") or {}
        return bool(placement.get("Constraints"))

    @property
    def is_job(self) -> bool:
        return self.mode.endswith("-job")


def service_of(raw: dict[str, Any], stack: str) -> Service:
    """A `Service` from the engine's listing of one service."""
    spec = raw.get("Spec") or {}
    name = str(spec.get("Name") or raw.get("ID", "?"))
    mode_spec = spec.get("Mode") or {}
    mode, replicas = "replicated", None
    if "Global" in mode_spec:
        mode = "global"
    elif "ReplicatedJob" in mode_spec:
        mode, replicas = "replicated-job", int((mode_spec["ReplicatedJob"] or {}).get("TotalCompletions") or 1)
    elif "GlobalJob" in mode_spec:
        mode = "global-job"
    else:
        replicas = int((mode_spec.get("Replicated") or {}).get("Replicas", 1))
    status = raw.get("ServiceStatus")
    counts = (int(status.get("RunningTasks") or 0), int(status.get("DesiredTasks") or 0)) if status else None
    return Service(str(raw.get("ID")), name, name.removeprefix(f"{stack}_"), mode, replicas, spec, counts)


def task_of(raw: dict[str, Any], services: dict[str, Service]) -> Task:
    """A `Task` from the engine's listing of one task."""
    status = raw.get("Status") or {}
    container = status.get("ContainerStatus") or {}
    service = services.get(str(raw.get("ServiceID")))
    exit_code = container.get("ExitCode") if status.get("State") in ("failed", "complete", "shutdown") else None
    spec = (raw.get("Spec") or {}).get("ContainerSpec") or {}
    return Task(
        id=str(raw.get("ID")),
        service=service.short if service else str(raw.get("ServiceID", "?"))[:12],
        slot=str(raw.get("Slot") or raw.get("NodeID") or "?"),
        node_id=str(raw.get("NodeID") or ""),
        desired=str(raw.get("DesiredState") or ""),
        state=str(status.get("State") or ""),
        message=str(status.get("Message") or ""),
        err=str(status.get("Err") or ""),
        exit_code=None if exit_code is None else int(exit_code),
        container_id=str(container.get("ContainerID") or ""),
        timestamp=_timestamp(status.get("Timestamp")) or 0.0,
        created=_timestamp(raw.get("CreatedAt")) or 0.0,
        env=tuple(spec.get("Env") or ()),
    )


def node_of(raw: dict[str, Any]) -> Node:
    """A `Node` from the engine's listing of one node."""
    status, manager = raw.get("Status") or {}, raw.get("ManagerStatus") or {}
    spec, description = raw.get("Spec") or {}, raw.get("Description") or {}
    addr = str(status.get("Addr") or "")
    if addr in ("", "0.0.0.0") and manager.get("Addr"):
        addr = str(manager["Addr"]).rpartition(":")[0]
    return Node(
        id=str(raw.get("ID")),
        hostname=str(description.get("Hostname") or raw.get("ID", "?")[:12]),
        role=str(spec.get("Role") or "worker"),
        state=str(status.get("State") or "unknown"),
        availability=str(spec.get("Availability") or "active"),
        addr=addr,
        message=str(status.get("Message") or ""),
        reachability=str(manager.get("Reachability") or ""),
        leader=bool(manager.get("Leader")),
        cpus=int((description.get("Resources") or {}).get("NanoCPUs") or 0) / 1e9,
        memory=int((description.get("Resources") or {}).get("MemoryBytes") or 0),
    )


def slots(tasks: Iterable[Task]) -> dict[tuple[str, str], list[Task]]:
    """The tasks of each slot (service, slot), oldest first."""
    found: dict[tuple[str, str], list[Task]] = {}
    for task in sorted(tasks, key=lambda t: (t.created, t.timestamp)):
        found.setdefault((task.service, task.slot), []).append(task)
    return found


def current(history: list[Task]) -> Task:
    """A slot's current task: its newest (the one the orchestrator made last)."""
    return history[-1]


def slot_crash_loop(history: list[Task], now: float, kept: int = DEFAULT_HISTORY) -> str | None:
    """Why one slot (its tasks, oldest first) is crash-looping, in one line; None when it is not.

    Crash-looping: a task of the slot failed (a non-zero exit, an unhealthy container killed) less than
    `CRASH_WINDOW` ago, whatever the slot's task does now. `kept` is the swarm's task history per slot: at that
    many failures the count is a floor.
    """
    failed = [t for t in history if t.state == "failed" and now - t.timestamp < CRASH_WINDOW]
    if not failed:
        return None
    last, newest = failed[-1], current(history)
    count = f"{len(failed)}{'+' if len(failed) >= kept else ''} task" + ("" if len(failed) == 1 else "s")
    now_is = "" if newest is last else f"; now {_doing(newest, now)}"
    when = f"the last {_ago(now - last.timestamp)}"
    return f"{count} failed in the last {_span(CRASH_WINDOW)}, {when}: {last.why}{now_is}"


def _doing(task: Task, now: float) -> str:
    if task.state == "ready" and task.desired == "ready":
        return "waiting out its restart delay"
    return f"{task.state} ({_ago(now - task.timestamp)})" if task.timestamp else task.state


@dataclass(frozen=True)
class Replicas:
    """A service's running tasks on ready nodes against what it wants."""

    running: int
    desired: int
    lost: tuple[Task, ...]  # still running, as far as the manager knows, on a node that is not ready: not counted
    missing: tuple[Task, ...]  # the current task of each slot that is not running (pending, starting, failed...)
    completed: int = 0  # a job's tasks that completed


def replicas(service: Service, tasks: list[Task], nodes: dict[str, Node]) -> Replicas:
    """Running vs desired: tasks with desired and current state running, on a ready node."""
    own = [t for t in tasks if t.service == service.short]
    ready = {n.id for n in nodes.values() if n.ready}
    running = [t for t in own if t.running and t.node_id in ready]
    lost = tuple(t for t in own if t.state == "running" and t.node_id not in ready)
    histories = slots(own)
    missing = tuple(
        current(h) for (_, slot), h in histories.items()
        if not any(t.running and t.node_id in ready for t in h) and _wanted(service, slot, current(h))
    )
    completed = sum(1 for t in own if t.state == "complete")
    if service.mode == "global" or service.mode == "global-job":
        placed = {t.node_id for t in own if t.desired != "shutdown" and t.node_id in ready}
        eligible = {n.id for n in nodes.values() if n.ready and n.availability == "active"}
        desired = len(placed) if service.constrained else len(placed | eligible)
    else:
        desired = service.replicas if service.replicas is not None else len(histories)
    return Replicas(len(running), desired, lost, missing, completed)


def _wanted(service: Service, slot: str, task: Task) -> bool:
    """Whether the slot is one the service still wants: its task is not shut down on purpose, or it is a replica
    within the service's count (a task that ended without a restart: `restart_policy: condition: none`)."""
    if task.desired != "shutdown":
        return True
    return service.mode == "replicated" and slot.isdigit() and int(slot) <= (service.replicas or 0)


def service_state(service: Service, tasks: list[Task], nodes: dict[str, Node], now: float) -> ServiceState:
    """One service's state for the sweep's snapshot: crash-looping (a slot with a recent failed task), completed (a
    job done), running (every replica running on a ready node, or the missing ones still on their way up),
    else stopped."""
    own = [t for t in tasks if t.service == service.short]
    for (_, slot), history in sorted(slots(own).items()):
        looping = slot_crash_loop(history, now)
        if looping is not None:
            return ServiceState(service.short, "crash-looping", f"slot {slot}: {looping}",
                                sum(1 for t in history if t.state == "failed"))
    counts = replicas(service, tasks, nodes)
    if service.is_job and counts.completed >= max(1, counts.desired):
        return ServiceState(service.short, "completed", f"{counts.completed} task(s) completed")
    detail = f"{counts.running}/{counts.desired} running on ready nodes"
    if counts.running >= counts.desired:
        return ServiceState(service.short, "running", detail)
    if not counts.lost and all(t.state in COMING_UP and not t.stuck for t in counts.missing):
        return ServiceState(service.short, "running", f"{detail}, the others starting")
    why = [f"{t.label} on a node that is {nodes[t.node_id].state if t.node_id in nodes else 'gone'}"
           for t in counts.lost]
    why += [f"{t.label} {t.state}: {t.why}" for t in counts.missing if t.stuck or t.state not in COMING_UP]
    return ServiceState(service.short, "stopped", "; ".join([detail, *why]))


def snapshot_of(services: list[Service], tasks: list[Task], nodes: list[Node], now: float | None = None
                ) -> StackSnapshot:
    """Every service's state at one instant, by the Swarm rules above."""
    now = time.time() if now is None else now
    by_id = {n.id: n for n in nodes}
    return StackSnapshot(now, {s.short: service_state(s, tasks, by_id, now) for s in sorted(services,
                                                                                            key=lambda s: s.short)})
