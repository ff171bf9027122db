"""A Docker Swarm stack through a manager's Engine API: the stack's services (by the label `docker stack deploy`
puts on them), their tasks, the swarm's nodes, and a `Container` for each slot's current task. It only reads.

A container is inspected, sampled, exec'd into and its logs read only on the engine of the node that runs it.
The containers on the engine talked to are inspected as Compose's are; one on another node is described from its
task (its state, its environment from the task's spec) and its logs come through the manager
(`docker service logs`); exec and stats on it say where it runs instead of guessing.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ...config import Settings
from ..result import TargetUnreachable
from ..transport.engine import (
    ContainerStats,
    connect_engine,
    engine_address,
    engine_gone,
    engine_host,
    inspect,
    task_logs,
)
from .stack import LOG_LINE_LIMIT, Container, Stack, StackSnapshot
from .swarm_model import (
    DEFAULT_HISTORY,
    STACK_LABEL,
    Node,
    Service,
    Task,
    current,
    node_line,
    node_of,
    service_of,
    slots,
    snapshot_of,
    task_of,
)

# The container state a task's state stands for, for a container on another node (never inspected here).
_CONTAINER_STATUS = {"running": "running", "starting": "running", "complete": "exited", "failed": "exited",
                     "shutdown": "exited", "rejected": "exited", "orphaned": "exited"}


class NotOnThisEngine(Exception):
    """A container runs on another node of the swarm: exec and stats are only on that node's engine."""


@dataclass(frozen=True)
class LogLine:
    """One line of a service's logs, as the manager gathered it from the task that wrote it."""

    at: str  # RFC 3339 timestamp, sorts as time
    task_id: str
    text: str


@dataclass(eq=False)
class SwarmStack(Stack):
    """The stack as the swarm's manager sees it, opened once per sweep."""

    tool: ClassVar[str] = "Swarm"
    noun: ClassVar[str] = "stack"
    list_command: ClassVar[str] = "docker stack ls"

    stack: str
    client: Any
    timeout: float
    swarm_services: list[Service] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    local_node: str = ""
    history_limit: int = DEFAULT_HISTORY
    containers: list[Container] = field(default_factory=list)
    engine_info: dict[str, Any] = field(default_factory=dict)
    engine_host: str = "127.0.0.1"
    lost: str | None = None
    _stats: ContainerStats | None = None

    @property
    def name(self) -> str:
        return self.stack

    @property
    def declared(self) -> list[str]:
        return sorted(s.short for s in self.swarm_services)

    def jobs(self) -> set[str]:
        return {s.short for s in self.swarm_services if s.is_job}

    def service(self, short: str) -> Service | None:
        return next((s for s in self.swarm_services if s.short == short), None)

    def full_name(self, short: str) -> str:
        found = self.service(short)
        return found.name if found else f"{self.stack}_{short}"

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def where(self, task: Task) -> str:
        """The node a task runs on, as a message names it."""
        found = self.node(task.node_id)
        return found.where if found else (task.node_id[:12] or "no node")

    def is_local(self, task: Task) -> bool:
        return bool(task.node_id) and task.node_id == self.local_node

    def command(self, args: str) -> str:
        """The Swarm command an engineer pastes for a Compose-style `args` ("logs web --tail=100")."""
        verb, _, rest = args.partition(" ")
        service, _, tail = rest.partition(" ")
        full = self.full_name(service) if service else ""
        if verb == "logs":
            lines = re.search(r"--tail[= ](\d+)", tail)
            return f"docker service logs --timestamps --tail {lines.group(1) if lines else 100} {full}"
        if verb == "ps":
            return f"docker service ps --no-trunc {full}" if full else f"docker stack ps --no-trunc {self.stack}"
        if verb == "up":
            return f"docker stack deploy -c docker-compose.yml {self.stack}"
        if verb == "restart":
            return f"docker service update --force {full} {tail}".rstrip()
        if verb == "exec":
            return (f"docker exec $(docker ps -q -f label=com.docker.swarm.service.name={full} | head -n 1) {tail}"
                    "   # on the node that runs it: docker service ps " + full)
        return f"docker service {args}"

    def host_network_ports(self, service: str) -> list[int] | None:
        """A host-networked service's ports: those its endpoint publishes in host mode (`ports: mode: host`)."""
        found = self.service(service)
        ports = ((found.spec.get("EndpointSpec") or {}).get("Ports") or []) if found else []
        published = [int(p["PublishedPort"]) for p in ports
                     if p.get("PublishMode") == "host" and p.get("Protocol", "tcp") == "tcp" and p.get("PublishedPort")]
        return sorted(set(published)) or None

    def of_service(self, service: str) -> list[Container]:
        """The service's containers, those on the engine talked to first."""
        own = [c for c in self.containers if c.service == service]
        return sorted(own, key=lambda c: isinstance(c.handle, RemoteTask))

    def refreshed(self, container: Container) -> Container | None:
        if isinstance(container.handle, RemoteTask):
            return container
        try:
            handle = inspect(self.client, container.attrs["Id"])
        except TargetUnreachable:
            return container
        return None if handle is None else Container(container.name, container.service, handle.attrs, handle)

    def stats_or_reason(self, container: Container) -> dict[str, Any] | str | None:
        if isinstance(container.handle, RemoteTask):
            if container.status != "running":
                return None
            return (f"runs on node {container.handle.where}, not on the engine this sweep talks to: "
                    f"docker stats --no-stream {container.name} there")
        return self._stats.sample(container.attrs["Id"]) if self._stats is not None else None

    def engine_lost(self) -> str | None:
        if self.lost is None:
            self.lost = engine_gone(self.timeout)
        return self.lost

    def engine_df(self) -> dict[str, Any]:
        return dict(self.client.df())

    def tasks_now(self) -> list[Task]:
        """The stack's tasks listed again now; TargetUnreachable if the engine is gone."""
        if lost := engine_gone(self.timeout):
            raise TargetUnreachable("docker", lost)
        try:
            return _tasks(self.client, self.stack, {s.id: s for s in self.swarm_services})
        except Exception as exc:  # noqa: BLE001 - the engine went away between the probe and the listing
            raise TargetUnreachable("docker", f"Docker engine stopped answering: {type(exc).__name__}") from None

    def inspected_now(self) -> list[Container]:
        return self.containers_of(self.tasks_now())

    def snapshot(self, fresh: bool = True) -> StackSnapshot:
        """Every service's state by the Swarm rules: `fresh`, its tasks and the nodes listed again now."""
        if not fresh:
            return snapshot_of(self.swarm_services, self.tasks, self.nodes)
        tasks = self.tasks_now()
        try:
            nodes = [node_of(raw) for raw in self.client.api.nodes()]
        except Exception as exc:  # noqa: BLE001 - the engine went away after the tasks were listed
            raise TargetUnreachable("docker", f"Docker engine stopped answering: {type(exc).__name__}") from None
        return snapshot_of(self.swarm_services, tasks, nodes)

    def crashed_services(self) -> dict[str, str]:
        """Services crash-looping, or stopped with a task the swarm cannot start: waiting will not heal them."""
        states = self.snapshot(fresh=False).services
        return {name: s.detail for name, s in states.items() if s.state in ("crash-looping", "stopped")}

    def current_tasks(self, tasks: list[Task] | None = None) -> list[Task]:
        """Each slot's current task."""
        return [current(h) for h in slots(self.tasks if tasks is None else tasks).values()]

    def containers_of(self, tasks: list[Task]) -> list[Container]:
        """A `Container` for each slot's current task that has one: inspected when it is on this engine."""
        found = []
        for task in self.current_tasks(tasks):
            if not task.container_id:
                continue
            if self.is_local(task):
                handle = inspect(self.client, task.container_id)
                if handle is not None:
                    found.append(Container(handle.name, task.service, handle.attrs, handle))
                continue
            name = f"{self.full_name(task.service)}.{task.slot}.{task.id}"
            found.append(Container(name, task.service, _described(task, name), RemoteTask(self, task)))
        return sorted(found, key=lambda c: c.name)

    def inspect_task(self, task: Task) -> dict[str, Any] | None:
        """The inspection of a task's container when it is on this engine (and still there), else None."""
        if not (self.is_local(task) and task.container_id):
            return None
        handle = inspect(self.client, task.container_id)
        return None if handle is None else dict(handle.attrs)

    def task_logs(self, tasks: list[Task], lines: int) -> tuple[list[LogLine], dict[str, str]]:
        """The last `lines` of each task's log, through the manager (one request per task, each under the probe
        timeout), ordered by time, capped, the service's secret values masked; and, by task id, why a task's
        were not read (its node is down, the engine did not answer). A task that never ran has none."""
        found: list[LogLine] = []
        unread: dict[str, str] = {}
        for task in tasks:
            node = self.node(task.node_id)
            if not task.container_id:
                continue
            if node is None or not node.ready:
                unread[task.id] = f"{task.label} on {node_line(node)}, which is {node.state if node else 'gone'}"
                continue
            service = self.service(task.service)
            tty = bool(service.container_spec.get("TTY")) if service else False
            try:
                raw = task_logs(self.client, task.id, lines, tty)
            except Exception as exc:  # noqa: BLE001 - one task's logs missing is said, the others still read
                unread[task.id] = f"{task.label} on {node_line(node)}: {type(exc).__name__}"
                continue
            for line in raw.decode("utf-8", errors="replace").splitlines():
                at, _, text = line.partition(" ")
                found.append(LogLine(at, task.id, self.scrub(task.service, text)[:LOG_LINE_LIMIT]))
        return sorted(found, key=lambda entry: entry.at), unread

    def service_logs(self, short: str, lines: int, task_ids: set[str] | None = None) -> list[LogLine]:
        """The last `lines` of each current task of the service (of `task_ids`, when given), ordered by time."""
        chosen = [t for t in (self.tasks if task_ids is not None else self.current_tasks())
                  if t.service == short and (task_ids is None or t.id in task_ids)]
        return self.task_logs(chosen, lines)[0]

    def attach_stats(self) -> None:
        """The first cgroup reading of each running container on this engine, once inspected (as Compose's)."""
        if self._stats is None:
            return
        local = [c for c in self.containers if not isinstance(c.handle, RemoteTask) and c.status == "running"]
        self._stats.attach([(c.attrs["Id"], int(c.state.get("Pid") or 0),
                             str((c.attrs.get("HostConfig") or {}).get("CgroupParent") or "")) for c in local])
        for container in local:
            container.oom_kills = self._stats.oom_kills(container.attrs["Id"])

    def scrub(self, short: str, text: str) -> str:
        """`text` with the values of the service's secret-named variables masked (as a container's are)."""
        service = self.service(short)
        env = list(service.container_spec.get("Env") or []) if service else []
        return Container("", short, {"Config": {"Env": env}}, None).scrub(text)

    def close(self) -> None:
        if self._stats is not None:
            self._stats.close()
        self.client.close()


class RemoteTask:
    """The handle of a container on another node: its logs come through the manager; exec cannot reach it."""

    def __init__(self, stack: SwarmStack, task: Task) -> None:
        self.stack, self.task = stack, task

    @property
    def where(self) -> str:
        return self.stack.where(self.task)

    def logs(self, tail: int = 100, **_: Any) -> bytes:
        """The task's last `tail` lines through the manager (its one run: a restart is a new task)."""
        lines, unread = self.stack.task_logs([self.task], tail)
        if unread:
            return f"(logs not read: {unread[self.task.id]})".encode()
        return "\n".join(line.text for line in lines).encode()

    def exec_run(self, command: list[str], demux: bool = False) -> tuple[int, bytes]:
        service = self.stack.full_name(self.task.service)
        raise NotOnThisEngine(
            f"it runs on node {self.where}, not on the engine this sweep talks to: run the sweep with DOCKER_HOST "
            f"on that node's engine to test from inside it (docker service ps {service})"
        )


def _described(task: Task, name: str) -> dict[str, Any]:
    """What is known of a container on another node, from its task, in the shape of an inspection."""
    status = _CONTAINER_STATUS.get(task.state, "created")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(task.timestamp)) if task.timestamp else None
    return {
        "Id": task.container_id,
        "Name": f"/{name}",
        "State": {"Status": status, "ExitCode": task.exit_code or 0, "Error": task.err,
                  "StartedAt": stamp if status == "running" else None,
                  "FinishedAt": stamp if status == "exited" else None},
        "Config": {"Env": list(task.env)},
        "HostConfig": {},
        "RestartCount": 0,
    }


def open_swarm(settings: Settings) -> SwarmStack:
    """Connect to the engine, check it is a swarm manager, list the stack's services, tasks and the swarm's nodes,
    start sampling the stats of the running containers on this engine, then inspect them."""
    name = str(settings.swarm_stack)
    client = connect_engine(settings.timeout)
    stack = SwarmStack(name, client, settings.timeout, engine_host=engine_host(engine_address()))
    try:
        stack.engine_info = client.info()
        swarm = stack.engine_info.get("Swarm") or {}
        _refuse_non_manager(swarm, name)
        stack.local_node = str(swarm.get("NodeID") or "")
        spec = (swarm.get("Cluster") or {}).get("Spec") or {}
        stack.history_limit = int((spec.get("Orchestration") or {}).get("TaskHistoryRetentionLimit") or DEFAULT_HISTORY)
        stack.swarm_services = _services(client, name)
        stack.tasks = _tasks(client, name, {s.id: s for s in stack.swarm_services})
        stack.nodes = sorted((node_of(raw) for raw in client.api.nodes()), key=lambda n: (n.hostname, n.id))
        running = [t.container_id for t in stack.current_tasks() if stack.is_local(t) and t.state == "running"]
        stack._stats = ContainerStats(client, settings.timeout, engine_address(), stack.engine_info)
        stack._stats.start(running)
        stack.containers = stack.containers_of(stack.tasks)
        stack.attach_stats()
    except TargetUnreachable:
        stack.close()
        raise
    except Exception as exc:  # noqa: BLE001 - the engine went away, or refused, between connect and list
        stack.close()
        raise TargetUnreachable("docker", _swarm_cause(exc, name)) from None
    return stack


def _refuse_non_manager(swarm: dict[str, Any], name: str) -> None:
    """TargetUnreachable when the engine cannot answer for the swarm: not in one, locked, or a worker."""
    host = engine_address()
    state = swarm.get("LocalNodeState") or "inactive"
    if state == "locked":
        raise TargetUnreachable("docker", f"the swarm of the Docker engine at {host} is locked: docker swarm unlock")
    if state != "active":
        raise TargetUnreachable("docker", f"the Docker engine at {host} is not part of a swarm (swarm {state}): "
                                          f"point DOCKER_HOST at a manager of the swarm that runs stack {name}")
    if not swarm.get("ControlAvailable"):
        managers = ", ".join(sorted(str(m.get("Addr", "")).rpartition(":")[0] for m in swarm.get("RemoteManagers")
                                    or [])) or "see docker node ls on a manager"
        raise TargetUnreachable("docker", f"the Docker engine at {host} is a swarm worker, not a manager: point "
                                          f"DOCKER_HOST at a manager's engine (managers: {managers})")


def _swarm_cause(exc: Exception, name: str) -> str:
    """One line for an engine error while reading the swarm; a worker's 503 says to point at a manager."""
    text = str(getattr(exc, "explanation", None) or exc)
    if "not a swarm manager" in text:
        return (f"the Docker engine at {engine_address()} is not a swarm manager ({text.split('.')[0].strip()}): "
                f"point DOCKER_HOST at a manager of the swarm that runs stack {name}")
    first = text.splitlines()[0][:200] if text else type(exc).__name__
    return f"Docker engine stopped answering: {type(exc).__name__}: {first}"


def _services(client: Any, name: str) -> list[Service]:
    listed = client.api.services(filters={"label": f"{STACK_LABEL}={name}"}, status=True)
    return sorted((service_of(raw, name) for raw in listed), key=lambda s: s.short)


def _tasks(client: Any, name: str, services: dict[str, Service]) -> list[Task]:
    if not services:
        return []
    listed = client.api.tasks(filters={"service": sorted(services)})
    return [task_of(raw, services) for raw in listed]
