"""The Docker engine: where it is, a client on it with the probe timeout on every request, whether it still
answers, and each running container's stats: from its cgroup files when the engine is on this host
(`ContainerStats`, `cgroup`), else from the engine's stats API, sampled in the background (`StatsPool`).
It only reads."""

from __future__ import annotations

import os
import socket
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from ..result import TargetUnreachable
from .cgroup import SOURCE_KEY, Cgroup, CgroupSampler, locate, mounts

STATS_WORKERS = 16
INSPECT_WORKERS = 8  # under the SDK client's pool of 10 connections
# What one stats sample may take beyond the probe timeout: the engine itself waits ~1 s between two readings.
STATS_SECONDS = 3.0


def engine_address() -> str:
    """Where the engine is, as DOCKER_HOST says (default: the local socket)."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def engine_host(address: str) -> str:
    """The host published ports are reached on: loopback for a local engine, else DOCKER_HOST's host."""
    if address.startswith(("unix://", "npipe://")):
        return "127.0.0.1"
    host = urlsplit(address).hostname or "127.0.0.1"
    return "127.0.0.1" if host in ("localhost", "127.0.0.1", "::1") else host


def connect_engine(timeout: float) -> Any:
    """A Docker SDK client on the engine from the environment, or TargetUnreachable saying why."""
    import docker

    host = engine_address()
    if host.startswith("unix://"):
        _unix_socket_accepts(host, timeout)
    try:  # the client asks the engine for its API version: that request is the reachability probe
        return docker.from_env(timeout=timeout)
    except docker.errors.DockerException as exc:
        raise TargetUnreachable("docker", _engine_cause(str(exc), host, timeout)) from None


def engine_gone(timeout: float) -> str | None:
    """Why the engine no longer accepts connections, else None (tried on its unix socket only)."""
    host = engine_address()
    if host.startswith("unix://"):
        try:
            _unix_socket_accepts(host, timeout)
        except TargetUnreachable as exc:
            return exc.cause
    return None


def _unix_socket_accepts(host: str, timeout: float) -> None:
    """TargetUnreachable unless something accepts on the engine's unix socket.

    Tried here, with a socket that is always closed, before the SDK connects: the SDK leaves its socket open
    when the connect itself fails (missing file, nobody listening).
    """
    path = host.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        try:
            probe.connect(path)
        except OSError as exc:
            raise TargetUnreachable("docker", _engine_cause(f"{type(exc).__name__}: {exc}", host, timeout)) from None


def _engine_cause(text: str, host: str, timeout: float) -> str:
    lowered = text.lower()
    if "permission denied" in lowered:
        return f"permission denied on {host}: run as a member of the docker group, or as root"
    if "no such file" in lowered or "filenotfounderror" in lowered:
        return f"no Docker engine at {host}: is dockerd running? (or set DOCKER_HOST)"
    if "connection refused" in lowered:
        return f"connection refused by the Docker engine at {host}: is dockerd running? (or fix DOCKER_HOST)"
    if "timed out" in lowered or "timeout" in lowered:
        return f"timed out after {timeout:g} s waiting for the Docker engine at {host}"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return f"DNS lookup failed for the Docker engine at {host}"
    first = text.splitlines()[0][:200] if text else "no answer"
    return f"cannot reach the Docker engine at {host}: {first}"


def task_logs(client: Any, task_id: str, tail: int, tty: bool = False) -> bytes:
    """A swarm task's last `tail` log lines, with timestamps, through a manager, read as one answer under the
    client's timeout. (The SDK's `service_logs` streams with the socket timeout switched off: a task on a node
    that is down keeps that stream open for ever. The SDK's own helpers read the buffered answer here.)"""
    api = client.api
    params = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": 0, "tail": tail}
    response = api._get(api._url("/tasks/{0}/logs", task_id), params=params, stream=False)
    return bytes(api._get_result_tty(False, response, tty))


def list_containers(client: Any, label: str) -> list[dict[str, Any]]:
    """The engine's listing of every container (running or not) with the label `key=value`."""
    return list(client.api.containers(all=True, filters={"label": label}))


def inspect(client: Any, container_id: str) -> Any | None:
    """The container's SDK handle, inspected now (`.attrs`, `.name`, `.labels`); None when it is gone.

    Any other engine error is TargetUnreachable with the engine's first line.
    """
    import docker

    try:
        return client.containers.get(container_id)
    except docker.errors.NotFound:
        return None
    except docker.errors.DockerException as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise TargetUnreachable("docker", f"cannot inspect container {container_id[:12]}: {first}") from None


def inspect_all(client: Any, container_ids: list[str]) -> list[Any | None]:
    """`inspect` of each container, `INSPECT_WORKERS` at a time (within the client's connection pool), in order."""
    if len(container_ids) <= 1:
        return [inspect(client, cid) for cid in container_ids]
    with ThreadPoolExecutor(min(INSPECT_WORKERS, len(container_ids)), thread_name_prefix="opscheck-inspect") as pool:
        return list(pool.map(lambda cid: inspect(client, cid), container_ids))


class StatsPool:
    """One stats sample per running container, all taken at once in the background.

    One sample takes a second or two (the engine waits for a second reading to compute CPU use), longer than
    a short probe timeout: the samples go through their own client with `STATS_SECONDS` more.
    """

    def __init__(self, client: Any, timeout: float) -> None:
        self.client = client
        self.timeout = timeout
        self._samples: dict[str, Future[dict[str, Any]]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._client: Any = None

    def start(self, container_ids: list[str]) -> None:
        """Start sampling the containers `container_ids` (running ones), each in a worker of its own."""
        import docker

        if not container_ids:
            return
        self._client = docker.from_env(
            version=self.client.api.api_version, timeout=self.timeout + STATS_SECONDS, max_pool_size=STATS_WORKERS
        )
        self._pool = ThreadPoolExecutor(
            max_workers=min(STATS_WORKERS, len(container_ids)), thread_name_prefix="opscheck-stats"
        )
        for container_id in container_ids:
            self._samples[container_id] = self._pool.submit(self._client.api.stats, container_id, stream=False)

    def sample(self, container_id: str) -> dict[str, Any] | str | None:
        """The container's stats sample, or why there is none (a one-line reason); None when not sampled."""
        future = self._samples.get(container_id)
        if future is None:
            return None
        try:
            return dict(future.result(timeout=self.timeout + STATS_SECONDS + 1))
        except Exception as exc:  # noqa: BLE001 - a sample that failed is reported with its reason
            return f"no stats sample: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"

    def close(self) -> None:
        """Let the samples in flight end (each is bounded by its timeout), then close the pool's client:
        closing a client under a running request would leave its socket open."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._client is not None:
            self._client.close()


def cgroups_unavailable(address: str, info: dict[str, Any]) -> str | None:
    """Why the containers' figures cannot come from their cgroup files here, in a few words; None when they can:
    the engine listens on a unix socket of this host, is not rootless, and cgroups are mounted here."""
    if not address.startswith("unix://"):
        return f"the engine ({address}) is not on this host"
    if any("rootless" in str(option) for option in info.get("SecurityOptions") or []):
        return "the engine is rootless"
    if not os.path.exists("/proc/self/mountinfo"):
        return "no cgroups on this host"
    return None


class ContainerStats:
    """Each running container's stats sample, in the engine's stats API shape, its `SOURCE_KEY` saying where
    its figures came from: its cgroup files when the engine is on this host and they are readable (two readings
    `cgroup.CPU_INTERVAL` apart), else the engine's stats API (a second or two per sample).

    `start` (right after the listing) starts the API samples when the engine is not local; `attach` (once the
    containers are inspected) finds each one's cgroup, takes the first reading and the OOM-kill counter, and
    sends the containers whose cgroup cannot be read to the API.
    """

    def __init__(self, client: Any, timeout: float, address: str, info: dict[str, Any]) -> None:
        self.reason = cgroups_unavailable(address, info)
        self.driver = str(info.get("CgroupDriver") or "cgroupfs")
        self._pool = StatsPool(client, timeout)
        self._cgroups: CgroupSampler | None = None
        self._why: dict[str, str] = {}  # container id -> why its figures come from the API

    def start(self, running: list[str]) -> None:
        """Start the API samples of the `running` containers (ids) when no cgroup can be read here."""
        if self.reason is not None:
            self._why = dict.fromkeys(running, self.reason)
            self._pool.start(running)

    def attach(self, running: list[tuple[str, int, str]]) -> None:
        """Find the cgroup of each running container (id, main pid, CgroupParent), read it a first time; the API
        samples those whose cgroup cannot be read."""
        if self.reason is not None:
            return
        try:
            where, unreadable = mounts(), ""
        except OSError as exc:
            where, unreadable = None, f"cgroup mounts not readable here: {type(exc).__name__}"
        found: dict[str, Cgroup] = {}
        for container_id, pid, parent in running:
            located = locate(container_id, pid, self.driver, parent, where) if where is not None else unreadable
            if isinstance(located, Cgroup):
                found[container_id] = located
            else:
                self._why[container_id] = located
        self._cgroups = CgroupSampler(found)
        self._why |= self._cgroups.failed  # a cgroup found but not read: the API says instead
        self._pool.start(list(self._why))

    def oom_kills(self, container_id: str) -> int | None:
        """Kills by the OOM killer in the container's memory cgroup since it started; None when not readable."""
        return self._cgroups.oom_kills(container_id) if self._cgroups is not None else None

    def sample(self, container_id: str) -> dict[str, Any] | str | None:
        """The container's sample, or why there is none (one line); None when it was not running."""
        sample = self._cgroups.sample(container_id) if self._cgroups is not None else None
        if sample is not None:
            return sample
        sample = self._pool.sample(container_id)
        if isinstance(sample, dict):
            sample[SOURCE_KEY] = f"the engine's stats API ({self._why.get(container_id, 'not sampled here')})"
        return sample

    def close(self) -> None:
        if self._cgroups is not None:
            self._cgroups.close()
        self._pool.close()
