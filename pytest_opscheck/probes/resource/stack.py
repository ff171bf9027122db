"""The stack interface: what the stack diagnoses and the sweep know of a container stack, whatever runs it.

`Stack` is the interface (Compose today, in `resource.compose`; a Swarm stack would be another subclass),
`Container` one container as the engine inspected it, `StackSnapshot` the state of every service at one
instant. `crash_loop` is the one rule that says a container is crash-looping: the snapshot and the
`no_crash_loop` diagnosis both use it, so the same fault gets the same verdict whenever it is looked at.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from .secret_env import secret_values

LOG_LINES = 100
LOG_SCAN_LINES = 500
LOG_LINE_LIMIT = 500
# Environment variables whose values are never shown, even inside a container's own log lines.
SECRET_ENV = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|DSN|_URL$|_URI$", re.IGNORECASE)
# A container that started again (its restart count is 1 or more) less than this ago is crash-looping, whether
# it is caught "restarting" or "Up 3 seconds". Docker's restart backoff never waits more than a minute.
CRASH_WINDOW = 120.0
# A container restarted once and running this long since (with no healthcheck to say it is well) has settled.
SETTLED_SECONDS = 10.0


@dataclass
class Container:
    """One container of the stack, as inspected when the sweep opened the stack."""

    name: str
    service: str
    attrs: dict[str, Any]
    handle: Any
    # Kills by the OOM killer in its memory cgroup since it started, main process or not; None: not readable here.
    oom_kills: int | None = None

    @property
    def state(self) -> dict[str, Any]:
        return dict(self.attrs.get("State", {}))

    @property
    def status(self) -> str:
        return str(self.state.get("Status", "unknown"))

    @property
    def restart_count(self) -> int:
        return int(self.attrs.get("RestartCount", 0))

    @property
    def restart_policy(self) -> str:
        return str((self.attrs.get("HostConfig", {}).get("RestartPolicy") or {}).get("Name") or "no")

    @property
    def health(self) -> dict[str, Any] | None:
        health = self.state.get("Health")
        return dict(health) if health else None

    @property
    def env(self) -> dict[str, str]:
        """The container's environment (values are secrets: never show them)."""
        pairs = (item.partition("=") for item in self.attrs.get("Config", {}).get("Env") or [])
        return {k: v for k, _, v in pairs}

    @property
    def running_seconds(self) -> float | None:
        """How long the current run has lasted; None when not running."""
        started = _timestamp(self.state.get("StartedAt"))
        return max(0.0, time.time() - started) if started and self.status == "running" else None

    def describe(self) -> str:
        state = self.state
        if self.status == "exited":
            return f"exited with code {state.get('ExitCode')}"
        if self.status == "restarting":
            return f"restarting (restart count {self.restart_count}, last exit code {state.get('ExitCode')})"
        return self.status

    def scrub(self, text: str) -> str:
        """`text` with the values of the container's secret-named variables masked."""
        values = sorted(
            (v for k, v in self.env.items() if SECRET_ENV.search(k) and len(v) >= 4), key=len, reverse=True
        )
        for value in values:
            text = text.replace(value, "***")
        return text

    def logs(self, lines: int = LOG_LINES, since: float | None = None, until: float | None = None) -> str:
        """The last `lines` of the container's log (since `since`, up to `until`, epoch seconds), capped and
        scrubbed; its earlier runs included (the engine keeps one log across a container's restarts)."""
        try:
            window = {"until": until} if until else {}
            # Fractional seconds: a run that started within the second the last one ended owns none of its lines.
            raw = self.handle.logs(tail=lines, timestamps=False, since=float(since) if since else None, **window)
        except Exception as exc:  # noqa: BLE001 - a vanished container has no logs; say so
            return f"(logs unavailable: {type(exc).__name__})"
        text = raw.decode("utf-8", errors="replace")
        return self.scrub("\n".join(line[:LOG_LINE_LIMIT] for line in text.splitlines()))

    def logs_since_start(self, lines: int = LOG_SCAN_LINES) -> str:
        """The log tail of the container's current (or last) run: what came after its previous run ended (a run's
        first lines can reach the log before the engine records its start, never before the last run's end)."""
        started, finished = _timestamp(self.state.get("StartedAt")), _timestamp(self.state.get("FinishedAt"))
        return self.logs(lines, since=finished if started and finished and finished <= started else None)

    def last_run_logs(self, lines: int) -> str:
        """The last `lines` its last finished run wrote (the crash), not the banner of a run that started since."""
        finished = _timestamp(self.state.get("FinishedAt"))
        return self.logs(lines, until=finished + 0.01 if finished else None)

    @property
    def created(self) -> float | None:
        """When the container was created (a deploy), epoch seconds."""
        return _timestamp(self.attrs.get("Created"))

    @property
    def image(self) -> tuple[str, str]:
        """The image it was created from: the reference as given (tag) and the image id."""
        return str((self.attrs.get("Config") or {}).get("Image") or "?"), str(self.attrs.get("Image") or "?")

    def exec(self, command: list[str]) -> tuple[int | None, str]:
        """Run `command` inside the container (read-only commands only); exit code and output."""
        exit_code, output = self.handle.exec_run(command, demux=False)
        return exit_code, self.scrub((output or b"").decode("utf-8", errors="replace"))


def _timestamp(value: Any) -> float | None:
    """Epoch seconds of an engine timestamp (RFC 3339 with nanoseconds); None for the zero time."""
    if not value or str(value).startswith("0001-"):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", str(value)).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _span(seconds: float) -> str:
    """A duration in its largest whole unit: "3 s", "2 min", "5 h", "4 d"."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _ago(seconds: float) -> str:
    return f"{_span(seconds)} ago"


def _times(restarts: int) -> str:
    return f"{restarts} restart" + ("" if restarts == 1 else "s")


def _would_restart(attrs: Mapping[str, Any]) -> bool:
    """Whether the container's restart policy restarts it after a failure (on-failure: retries left)."""
    policy = (attrs.get("HostConfig") or {}).get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    if name == "on-failure":
        limit = int(policy.get("MaximumRetryCount") or 0)
        return limit == 0 or int(attrs.get("RestartCount") or 0) < limit
    return name in ("always", "unless-stopped")


def crash_loop(attrs: Mapping[str, Any], now: float | None = None) -> str | None:
    """Why the inspected container `attrs` is crash-looping, in one line; None when it is not.

    Crash-looping: the engine is restarting it; or it started again (RestartCount >= 1) less than
    `CRASH_WINDOW` ago, caught running or not; or it exited non-zero and its restart policy restarts it (an
    exit older than the window is not: the engine gave up on it, or it was stopped by hand). One restart
    followed by a healthy run (`restarted_once`) is not.
    """
    now = time.time() if now is None else now
    state = attrs.get("State") or {}
    status, code = state.get("Status"), state.get("ExitCode")
    restarts = int(attrs.get("RestartCount") or 0)
    started, finished = _timestamp(state.get("StartedAt")), _timestamp(state.get("FinishedAt"))
    if status == "restarting" or state.get("Restarting"):
        when = f", {_ago(now - finished)}" if finished else ""
        return f"restarting ({_times(restarts)}, last exit code {code}{when})"
    succeeded = status == "exited" and code == 0  # a job that failed, was restarted and then did its work
    if restarts >= 1 and started is not None and now - started < CRASH_WINDOW and not succeeded:
        if status == "running" and restarted_once(attrs, now):
            return None
        if status == "running":
            return f"restarted {restarts}x by its restart policy, the last {_ago(now - started)}"
        now_is = f"exited with code {code}" if status == "exited" else str(status)
        return f"{now_is} after {_times(restarts)}, the last {_ago(now - started)}"
    recent = finished is None or now - finished < CRASH_WINDOW
    if status == "exited" and code not in (0, None) and recent and _would_restart(attrs):
        policy = ((attrs.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name")
        when = f" {_ago(now - finished)}" if finished else ""
        return f"exited with code {code}{when}, restart policy {policy}"
    return None


def restarted_once(attrs: Mapping[str, Any], now: float | None = None) -> str | None:
    """A container restarted once (at start-up: the database not up yet) and well since: healthy by its own
    healthcheck, or, with none, running for `SETTLED_SECONDS`; said as such, never a crash loop. None otherwise."""
    now = time.time() if now is None else now
    state = attrs.get("State") or {}
    started = _timestamp(state.get("StartedAt"))
    if int(attrs.get("RestartCount") or 0) != 1 or state.get("Status") != "running" or started is None:
        return None
    health = (state.get("Health") or {}).get("Status")
    if health == "healthy" or (health is None and now - started >= SETTLED_SECONDS):
        well = "healthy" if health else f"running for {_span(now - started)}"
        return f"restarted once, {_ago(now - started)}, and {well} since"
    return None


@dataclass(frozen=True)
class ServiceState:
    """One service at one instant."""

    service: str
    state: str  # "running" | "crash-looping" | "stopped" | "completed" (a one-off job that exited 0)
    detail: str  # one line, e.g. "restarting (5 restarts, last exit code 1, 3 s ago)" or "exited (1) 2 min ago"
    restarts: int = 0


@dataclass(frozen=True)
class StackSnapshot:
    """Every service of the stack at one instant."""

    taken: float  # time.time()
    services: dict[str, ServiceState]


_RANK = {"crash-looping": 0, "running": 1, "completed": 2, "stopped": 3}


def container_state(attrs: Mapping[str, Any], job: bool = False, now: float | None = None) -> tuple[str, str]:
    """(state, detail) of one inspected container; `job`: its service is one others wait on to complete."""
    now = time.time() if now is None else now
    looping = crash_loop(attrs, now)
    if looping is not None:
        return "crash-looping", looping
    state = attrs.get("State") or {}
    status, code = str(state.get("Status") or "unknown"), state.get("ExitCode")
    if status == "running":
        started = _timestamp(state.get("StartedAt"))
        health = (state.get("Health") or {}).get("Status")
        up = f"up {_span(now - started)}" if started else "up"
        return "running", f"running ({up}" + (f", {health})" if health else ")")
    if status == "exited":
        finished = _timestamp(state.get("FinishedAt"))
        detail = f"exited ({code})" + (f" {_ago(now - finished)}" if finished else "")
        return ("completed" if job and code == 0 else "stopped"), detail
    return "stopped", status


def service_state(
    service: str, inspected: list[Mapping[str, Any]], job: bool = False, now: float | None = None
) -> ServiceState:
    """The state of `service` from its containers' inspections: crash-looping if one is, else running if one
    is, else completed (a job that exited 0), else stopped ("no container" when it has none)."""
    if not inspected:
        return ServiceState(service, "stopped", "no container")
    now = time.time() if now is None else now
    verdicts = [container_state(attrs, job, now) for attrs in inspected]
    state, detail = min(verdicts, key=lambda v: _RANK[v[0]])
    return ServiceState(service, state, detail, max(int(a.get("RestartCount") or 0) for a in inspected))


def snapshot_of(
    services: list[str], inspected: list[tuple[str, Mapping[str, Any]]], jobs: set[str], now: float | None = None
) -> StackSnapshot:
    """A snapshot from (service, inspection) pairs; `services` (the declared ones) appear even without one."""
    now = time.time() if now is None else now
    by_service: dict[str, list[Mapping[str, Any]]] = {s: [] for s in services}
    for service, attrs in inspected:
        by_service.setdefault(service, []).append(attrs)
    return StackSnapshot(
        now, {s: service_state(s, by_service[s], s in jobs, now) for s in sorted(by_service)}
    )


class Stack(ABC):
    """A stack of services in containers, as the engine sees it, opened once per sweep. Read-only."""

    # How the stack and its name are spoken of: "Compose project NAME", "docker compose ls".
    tool: ClassVar[str] = "container"
    noun: ClassVar[str] = "stack"
    list_command: ClassVar[str] = "docker ps"

    containers: list[Container]  # as inspected when the stack was opened, sorted by name
    engine_host: str  # the host its published ports are reached on
    engine_info: dict[str, Any]  # the engine's `docker info`

    @property
    @abstractmethod
    def name(self) -> str:
        """The stack's name (a Compose project's)."""

    @property
    @abstractmethod
    def declared(self) -> list[str]:
        """The services its definition says should run (none when the definition is not at hand)."""

    @abstractmethod
    def jobs(self) -> set[str]:
        """The services that run once: others wait on them to complete, an exit 0 is their success."""

    @abstractmethod
    def command(self, args: str) -> str:
        """The CLI command line, for this stack, that an engineer can paste: "docker compose -p NAME ARGS"."""

    @abstractmethod
    def host_network_ports(self, service: str) -> list[int] | None:
        """The TCP ports a host-network service listens on, as its definition declares; None: not declared."""

    @abstractmethod
    def refreshed(self, container: Container) -> Container | None:
        """The container inspected again now (a restart count may have grown); None when it is gone."""

    @abstractmethod
    def stats_or_reason(self, container: Container) -> dict[str, Any] | str | None:
        """The stats sample, or why there is none (a one-line reason); None when not running."""

    @abstractmethod
    def engine_lost(self) -> str | None:
        """Why the engine stopped answering during the sweep, else None."""

    @abstractmethod
    def engine_df(self) -> dict[str, Any]:
        """What the engine's disk holds (`docker system df`); raises when the engine cannot say."""

    @abstractmethod
    def inspected_now(self) -> list[Container]:
        """The stack's containers listed and inspected again now; TargetUnreachable if the engine is gone."""

    @abstractmethod
    def close(self) -> None:
        """Release the engine clients and the stats workers."""

    @property
    def kind(self) -> str:
        return f"{self.tool} {self.noun}"

    @property
    def services(self) -> list[str]:
        return sorted(set(self.declared) | {c.service for c in self.containers})

    @property
    def engine_is_local(self) -> bool:
        return self.engine_host == "127.0.0.1"

    @property
    def secrets(self) -> set[str]:
        """The values of the containers' secret-named variables (as inspected when the stack was opened): the
        sweep treats them as secrets for the rest of the sweep, wherever they show up."""
        return {value for c in self.containers for value in secret_values(c.env)}

    def of_service(self, service: str) -> list[Container]:
        return [c for c in self.containers if c.service == service]

    def is_completed_job(self, container: Container) -> bool:
        """An exit 0 of a service others wait on to complete (migrations, prestart) is its success."""
        return (
            container.status == "exited" and container.state.get("ExitCode") == 0 and container.service in self.jobs()
        )

    def crashed_services(self) -> dict[str, str]:
        """Services with a container that is crash-looping (`crash_loop`) or exited non-zero: waiting will not
        heal them. Service -> what its container does, in a few words."""
        crashed: dict[str, str] = {}
        now = time.time()
        for container in self.containers:
            looping = crash_loop(container.attrs, now)
            if looping is not None:
                crashed[container.service] = looping
            elif container.status == "exited" and container.state.get("ExitCode") not in (0, None):
                crashed[container.service] = container.describe()
        return crashed

    def snapshot(self, fresh: bool = True) -> StackSnapshot:
        """Every service's state: `fresh`, the containers inspected again now (TargetUnreachable if the engine
        is gone); else as they were inspected when the stack was opened (no engine request)."""
        containers = self.inspected_now() if fresh else self.containers
        return snapshot_of(self.declared, [(c.service, c.attrs) for c in containers], self.jobs())

    def image_created(self, image_id: str) -> float | None:
        """When the image `image_id` was built, epoch seconds; None when the engine cannot say."""
        return None

    def stats(self, container: Container) -> dict[str, Any] | None:
        """The stats sample of `container` (None when it was not running)."""
        sample = self.stats_or_reason(container)
        return sample if isinstance(sample, dict) else None
