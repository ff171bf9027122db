"""The Compose stack through the Docker Engine API: the project's containers by Compose's labels, their
state, logs, stats and environment. It only reads: nothing is started, restarted or removed."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
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
    inspect_all,
    list_containers,
)
from .compose_file import ComposeFile, project_name, read_compose_file
from .compose_hash import first_labels, prepare
from .stack import Container, Stack, _timestamp

PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
ONEOFF = "com.docker.compose.oneoff"


@dataclass(eq=False)
class ComposeStack(Stack):
    """The Compose project as the engine sees it, opened once per sweep."""

    tool: ClassVar[str] = "Compose"
    noun: ClassVar[str] = "project"
    list_command: ClassVar[str] = "docker compose ls"

    project: str
    client: Any
    containers: list[Container]
    compose: ComposeFile | None
    timeout: float
    engine_info: dict[str, Any] = field(default_factory=dict)
    engine_host: str = "127.0.0.1"
    lost: str | None = None
    _stats: ContainerStats | None = None
    # Today's Compose definition of the project, computed in the background as the stack opens (config_current).
    _config: Future[Any] | None = None
    _images: dict[str, float | None] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.project

    @property
    def declared(self) -> list[str]:
        return self.compose.active_services() if self.compose else []

    def jobs(self) -> set[str]:
        return self.compose.jobs() if self.compose is not None else set()

    def command(self, args: str) -> str:
        """A `docker compose` command line for this project that an engineer can paste."""
        if self.compose is not None:
            return f"cd {self.compose.folder} && docker compose {args}"
        return f"docker compose -p {self.project} {args}"

    def host_network_ports(self, service: str) -> list[int] | None:
        if self.compose is not None and self.compose.services.get(service):
            return self.compose.host_ports(service)
        return None

    def engine_lost(self) -> str | None:
        """Why the engine stopped answering during the sweep, else None (tried on its unix socket only)."""
        if self.lost is None:
            self.lost = engine_gone(self.timeout)
        return self.lost

    def refreshed(self, container: Container) -> Container | None:
        try:
            handle = inspect(self.client, container.attrs["Id"])
        except TargetUnreachable:  # the engine hiccuped: keep what was seen first
            return container
        return None if handle is None else Container(container.name, container.service, handle.attrs, handle)

    def start_stats(self, running: list[str]) -> None:
        """Start sampling the `running` containers (ids): through the engine's stats API at once, in the
        background, when their cgroup files cannot be read here; else `attach_stats` reads those."""
        self._stats = ContainerStats(self.client, self.timeout, engine_address(), self.engine_info)
        self._stats.start(running)

    def attach_stats(self) -> None:
        """The first cgroup reading and the OOM-kill counter of each running container, once inspected."""
        if self._stats is None:
            return
        running = [c for c in self.containers if c.status == "running"]
        self._stats.attach([(c.attrs["Id"], int(c.state.get("Pid") or 0),
                             str((c.attrs.get("HostConfig") or {}).get("CgroupParent") or "")) for c in running])
        for container in running:
            container.oom_kills = self._stats.oom_kills(container.attrs["Id"])

    def start_config(self, settings: Settings) -> None:
        """Start computing today's Compose definition (config hashes) in the background, if any container has one."""
        labels = first_labels(self)
        if labels is None:
            return
        compose_file = settings.path(settings.compose_file) if settings.compose_file else None
        env_file = settings.path(settings.env_file) if settings.env_file else None
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opscheck-compose-config")
        self._config = pool.submit(prepare, self.project, labels, compose_file, env_file, self.timeout)
        pool.shutdown(wait=False)

    def image_created(self, image_id: str) -> float | None:
        """When the image was built (`docker image inspect`), asked once per image; None when the engine cannot say."""
        if image_id not in self._images:
            if self.engine_lost():  # the SDK would leave its socket open on an engine that is gone
                return None
            try:
                created = self.client.api.inspect_image(image_id).get("Created")
            except Exception:  # noqa: BLE001 - a removed or unreadable image: its build time is unknown
                created = None
            self._images[image_id] = _timestamp(created)
        return self._images[image_id]

    def config_today(self) -> Any:
        """What `start_config` computed (`compose_hash.Prepared`, or why not), None when no container has a hash."""
        return self._config.result() if self._config is not None else None

    def stats_or_reason(self, container: Container) -> dict[str, Any] | str | None:
        return self._stats.sample(container.attrs["Id"]) if self._stats is not None else None

    def engine_df(self) -> dict[str, Any]:
        return dict(self.client.df())

    def inspected_now(self) -> list[Container]:
        if lost := engine_gone(self.timeout):
            raise TargetUnreachable("docker", lost)
        try:
            listed = _listed(self.client, self.project)
            return sorted(_inspected(self.client, [c["Id"] for c in listed]), key=lambda c: c.name)
        except TargetUnreachable:
            raise
        except Exception as exc:  # noqa: BLE001 - the engine went away between the probe and the listing
            raise TargetUnreachable("docker", f"Docker engine stopped answering: {type(exc).__name__}") from None

    def close(self) -> None:
        """Let the stats samples in flight end, then close both clients."""
        if self._stats is not None:
            self._stats.close()
        self.client.close()


def open_stack(settings: Settings) -> ComposeStack:
    """Connect to the engine, list the project's containers, start sampling the stats of the running ones
    through the engine's API when it is not local (a sweep's slowest probe) at once, inspect each container,
    then read the cgroup files of those the engine's API does not sample."""
    compose = read_compose_file(settings.path(settings.compose_file), settings.timeout) \
        if settings.compose_file else None
    project = project_name(settings, compose)
    client = connect_engine(settings.timeout)
    stack = ComposeStack(project, client, [], compose, settings.timeout, engine_host=engine_host(engine_address()))
    try:
        listed = _listed(client, project)
        stack.engine_info = client.info()  # its cgroup driver, and whether it is rootless
        stack.start_stats([c["Id"] for c in listed if c.get("State") == "running"])
        stack.containers = sorted(_inspected(client, [c["Id"] for c in listed]), key=lambda c: c.name)
        stack.attach_stats()
        stack.start_config(settings)
    except TargetUnreachable:
        stack.close()
        raise
    except Exception as exc:  # noqa: BLE001 - the engine went away between connect and list
        stack.close()
        raise TargetUnreachable("docker", f"Docker engine stopped answering: {type(exc).__name__}") from None
    return stack


def _listed(client: Any, project: str) -> list[dict[str, Any]]:
    """The project's containers as the engine lists them, without `docker compose run`'s one-offs."""
    listed = list_containers(client, f"{PROJECT}={project}")
    return [c for c in listed if (c.get("Labels") or {}).get(ONEOFF, "False") != "True"]


def _inspected(client: Any, ids: list[str]) -> list[Container]:
    """Each listed container inspected (several at once); one removed since the listing is left out."""
    containers = []
    for handle in inspect_all(client, ids):
        if handle is not None:
            containers.append(Container(handle.name, handle.labels.get(SERVICE, "?"), handle.attrs, handle))
    return containers
