"""The Compose stack through the Docker Engine API: containers by Compose's labels, their state, logs,
stats and environment. It only reads: nothing is started, restarted or removed."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..config import Settings
from ..targets import opener
from .result import Evidence, Finding, TargetUnreachable, table

PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
ONEOFF = "com.docker.compose.oneoff"
LOG_LINES = 100
LOG_SCAN_LINES = 500
LOG_LINE_LIMIT = 500
PLACEHOLDERS = {"changethis", "changeme", "change_me", "secret", "password", "todo", "xxx"}
STRONG_SECRETS = {"SECRET_KEY", "JWT_SECRET"}
MIN_SECRET_LENGTH = 32
# Docker's restart manager counts a run shorter than this as a failed start (its backoff doubles).
SHORT_RUN_SECONDS = 10.0
STATS_WORKERS = 16
# What one stats sample may take beyond the probe timeout: the engine itself waits ~1 s between two readings.
STATS_SECONDS = 3.0
# Environment variables whose values are never shown, even inside a container's own log lines.
SECRET_ENV = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|DSN|_URL$|_URI$", re.IGNORECASE)


@dataclass(frozen=True)
class ComposeFile:
    """What the compose file declares that the engine cannot tell: services, profiles, host-mode ports."""

    path: Path
    name: str | None = None
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def active_services(self) -> list[str]:
        """Services `docker compose up` starts: without `profiles:`, or in an active COMPOSE_PROFILES."""
        active = {p.strip() for p in self.variables.get("COMPOSE_PROFILES", "").split(",") if p.strip()}
        out = []
        for name, spec in self.services.items():
            profiles = spec.get("profiles") or []
            if not profiles or "*" in active or active & {str(p) for p in profiles}:
                out.append(name)
        return sorted(out)

    def jobs(self) -> set[str]:
        """Services others wait on to finish (`condition: service_completed_successfully`): exit 0 is done."""
        jobs: set[str] = set()
        for spec in self.services.values():
            depends = spec.get("depends_on")
            if isinstance(depends, dict):
                for name, cond in depends.items():
                    if isinstance(cond, dict) and cond.get("condition") == "service_completed_successfully":
                        jobs.add(str(name))
        return jobs

    def host_ports(self, service: str) -> list[int]:
        """The TCP ports a host-network service listens on, as its `ports:` (container side) and `expose:` say."""
        spec = self.services.get(service) or {}
        ports: set[int] = set()
        for entry in [*(spec.get("ports") or []), *(spec.get("expose") or [])]:
            if isinstance(entry, dict):
                target, protocol = str(entry.get("target", "")), str(entry.get("protocol", "tcp"))
            else:
                text = interpolate(str(entry), self.variables)
                text, _, protocol = text.partition("/")
                target = text.rsplit(":", 1)[-1]
            if protocol not in ("", "tcp"):
                continue
            ports.update(_port_range(interpolate(target, self.variables)))
        return sorted(ports)

    def network_mode(self, service: str) -> str:
        return interpolate(str((self.services.get(service) or {}).get("network_mode", "")), self.variables)


def _port_range(text: str) -> list[int]:
    low, _, high = text.strip().partition("-")
    if not low.isdigit() or (high and not high.isdigit()):
        return []
    return list(range(int(low), int(high or low) + 1))[:100]


_VARIABLE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `$VAR` and `$$` in one value."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, default = match.group(2) or "", match.group(3) or ""
        value = variables.get(name)
        if operator in (":-", ":?"):
            return value if value else (default if operator == ":-" else "")
        if operator in ("-", "?"):
            return value if value is not None else (default if operator == "-" else "")
        if operator in (":+", "+"):
            return default if (value if operator == ":+" else value is not None) else ""
        return value or ""

    return _VARIABLE.sub(replace, text)


def compose_variables(folder: Path) -> dict[str, str]:
    """The variables Compose interpolates with: the `.env` of the project folder under the environment."""
    values: dict[str, str] = {}
    dotenv = folder / ".env"
    if dotenv.is_file():
        from dotenv import dotenv_values

        try:
            values = {k: v for k, v in dotenv_values(dotenv, interpolate=False).items() if v is not None}
        except (OSError, UnicodeDecodeError):
            values = {}
    values.update(os.environ)
    return values


def read_compose_file(path: Path, timeout: float) -> ComposeFile:
    """The compose file's name and services (PyYAML when installed, else `docker compose config`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise TargetUnreachable("stack", f"cannot read compose file {path}: {reason}") from None
    variables = compose_variables(path.parent)
    try:
        import yaml
    except ImportError:
        match = re.search(r"^name:\s*['\"]?([^'\"\s#]+)", text, re.MULTILINE)
        name = interpolate(match.group(1), variables) if match else None
        services: dict[str, dict[str, Any]] = {s: {} for s in _services_from_cli(path, timeout)}
        return ComposeFile(path, name, services, variables)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise TargetUnreachable("stack", f"compose file {path} is not valid YAML{line}") from None
    if not isinstance(data, dict):
        raise TargetUnreachable("stack", f"compose file {path} is not a mapping of services")
    raw_services = data.get("services") or {}
    services = {str(k): (v if isinstance(v, dict) else {}) for k, v in raw_services.items()} \
        if isinstance(raw_services, dict) else {}
    name = interpolate(str(data["name"]), variables) if data.get("name") else None
    return ComposeFile(path, name or None, services, variables)


def _services_from_cli(path: Path, timeout: float) -> list[str]:
    """Declared services through Compose itself, for when no YAML parser is installed."""
    try:
        done = subprocess.run(
            ["docker", "compose", "-f", str(path), "config", "--services"],
            capture_output=True, text=True, timeout=timeout + 5, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return sorted(line.strip() for line in done.stdout.splitlines() if line.strip()) if done.returncode == 0 else []


def project_name(settings: Settings, compose: ComposeFile | None) -> str:
    """The Compose project: `compose_project`, else derived from the compose file the way Compose does."""
    if settings.compose_project:
        return settings.compose_project
    assert compose is not None
    from_env = compose.variables.get("COMPOSE_PROJECT_NAME")
    if from_env:
        return from_env
    if compose.name:
        return compose.name
    return re.sub(r"[^a-z0-9_-]", "", compose.folder.name.lower())


@dataclass
class Container:
    """One container of the project, as inspected when the sweep opened the stack."""

    name: str
    service: str
    attrs: dict[str, Any]
    handle: Any

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

    def logs(self, lines: int = LOG_LINES, since: float | None = None) -> str:
        """The last `lines` of the container's log (since `since`, epoch seconds), capped and scrubbed."""
        try:
            raw = self.handle.logs(tail=lines, timestamps=False, since=int(since) if since else None)
        except Exception as exc:  # noqa: BLE001 - a vanished container has no logs; say so
            return f"(logs unavailable: {type(exc).__name__})"
        text = raw.decode("utf-8", errors="replace")
        return self.scrub("\n".join(line[:LOG_LINE_LIMIT] for line in text.splitlines()))

    def logs_since_start(self, lines: int = LOG_SCAN_LINES) -> str:
        """The log tail of the container's current (or last) run."""
        return self.logs(lines, since=_timestamp(self.state.get("StartedAt")))

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


@dataclass
class Stack:
    """The Compose project as the engine sees it, opened once per sweep."""

    project: str
    client: Any
    containers: list[Container]
    compose: ComposeFile | None
    timeout: float
    engine_info: dict[str, Any] = field(default_factory=dict)
    engine_host: str = "127.0.0.1"
    _stats: dict[str, Future[dict[str, Any]]] = field(default_factory=dict)
    _pool: ThreadPoolExecutor | None = None
    _stats_client: Any = None
    lost: str | None = None

    @property
    def declared(self) -> list[str]:
        return self.compose.active_services() if self.compose else []

    @property
    def services(self) -> list[str]:
        return sorted(set(self.declared) | {c.service for c in self.containers})

    @property
    def engine_is_local(self) -> bool:
        return self.engine_host == "127.0.0.1"

    def of_service(self, service: str) -> list[Container]:
        return [c for c in self.containers if c.service == service]

    def compose_command(self, args: str) -> str:
        """A `docker compose` command line for this project that an engineer can paste."""
        if self.compose is not None:
            return f"cd {self.compose.folder} && docker compose {args}"
        return f"docker compose -p {self.project} {args}"

    def engine_lost(self) -> str | None:
        """Why the engine stopped answering during the sweep, else None (tried on its unix socket only)."""
        host = engine_address()
        if self.lost is None and host.startswith("unix://"):
            try:
                _unix_socket_accepts(host, self.timeout)
            except TargetUnreachable as exc:
                self.lost = exc.cause
        return self.lost

    def refreshed(self, container: Container) -> Container | None:
        """The container inspected again now (a restart count may have grown); None when it is gone."""
        import docker

        try:
            handle = self.client.containers.get(container.attrs["Id"])
        except docker.errors.NotFound:
            return None
        except docker.errors.DockerException:  # the engine hiccuped: keep what was seen first
            return container
        return Container(container.name, container.service, handle.attrs, handle)

    def is_completed_job(self, container: Container) -> bool:
        """An exit 0 of a service others wait on to complete (migrations, prestart) is its success."""
        return (
            container.status == "exited"
            and container.state.get("ExitCode") == 0
            and self.compose is not None
            and container.service in self.compose.jobs()
        )

    def crashed_services(self) -> dict[str, str]:
        """Services with a container that exited non-zero or is restarting: waiting will not heal them."""
        crashed: dict[str, str] = {}
        for container in self.containers:
            if container.status == "restarting" or (
                container.status == "exited" and container.state.get("ExitCode") not in (0, None)
            ):
                crashed[container.service] = container.describe()
        return crashed

    def start_stats(self, running: list[str]) -> None:
        """Sample the stats of the `running` containers (ids) at once, in the background.

        One sample takes a second or two (the engine waits for a second reading to compute CPU use), longer
        than a short probe timeout: the samples go through their own client with `STATS_SECONDS` more.
        """
        import docker

        if not running:
            return
        self._stats_client = docker.from_env(
            version=self.client.api.api_version, timeout=self.timeout + STATS_SECONDS, max_pool_size=STATS_WORKERS
        )
        self._pool = ThreadPoolExecutor(
            max_workers=min(STATS_WORKERS, len(running)), thread_name_prefix="opscheck-stats"
        )
        for container_id in running:
            self._stats[container_id] = self._pool.submit(self._stats_client.api.stats, container_id, stream=False)

    def stats(self, container: Container) -> dict[str, Any] | None:
        """The stats sample of `container` (None when it was not running)."""
        sample = self.stats_or_reason(container)
        return sample if isinstance(sample, dict) else None

    def stats_or_reason(self, container: Container) -> dict[str, Any] | str | None:
        """The stats sample, or why there is none (a one-line reason); None when not running."""
        future = self._stats.get(container.attrs["Id"])
        if future is None:
            return None
        try:
            return dict(future.result(timeout=self.timeout + STATS_SECONDS + 1))
        except Exception as exc:  # noqa: BLE001 - a sample that failed is reported with its reason
            return f"no stats sample: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"

    def close(self) -> None:
        """Let the stats samples in flight end (each is bounded by its timeout), then close both clients:
        closing a client under a running request would leave its socket open."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._stats_client is not None:
            self._stats_client.close()
        self.client.close()


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


@opener("stack", requires="compose_project|compose_file", imports=("docker",))
def open_stack(settings: Settings) -> Stack:
    """Connect to the engine, list the project's containers, start sampling the stats of the running ones
    (a sweep's slowest probe) at once, then inspect each container."""
    compose = read_compose_file(settings.path(settings.compose_file), settings.timeout) \
        if settings.compose_file else None
    project = project_name(settings, compose)
    client = connect_engine(settings.timeout)
    stack = Stack(project, client, [], compose, settings.timeout, engine_host=engine_host(engine_address()))
    try:
        listed = client.api.containers(all=True, filters={"label": f"{PROJECT}={project}"})
        listed = [c for c in listed if (c.get("Labels") or {}).get(ONEOFF, "False") != "True"]
        stack.start_stats([c["Id"] for c in listed if c.get("State") == "running"])
        stack.containers = sorted(_inspected(client, [c["Id"] for c in listed]), key=lambda c: c.name)
        stack.engine_info = client.info()
    except Exception as exc:  # noqa: BLE001 - the engine went away between connect and list
        stack.close()
        raise TargetUnreachable("docker", f"Docker engine stopped answering: {type(exc).__name__}") from None
    return stack


def _inspected(client: Any, ids: list[str]) -> list[Container]:
    """Each listed container inspected; one removed since the listing is left out."""
    import docker

    containers = []
    for container_id in ids:
        try:
            handle = client.containers.get(container_id)
        except docker.errors.NotFound:
            continue
        containers.append(Container(handle.name, handle.labels.get(SERVICE, "?"), handle.attrs, handle))
    return containers


def ps_table(stack: Stack) -> str:
    """A `docker compose ps`-like table of the project."""
    rows = []
    for service in stack.services:
        containers = stack.of_service(service)
        if not containers:
            rows.append(["-", service, "no container", "-", "-"])
        for c in containers:
            health = c.health["Status"] if c.health else "-"
            state = c.describe() + (" (completed)" if stack.is_completed_job(c) else "")
            rows.append([c.name, service, state, health, str(c.restart_count)])
    return table(["NAME", "SERVICE", "STATE", "HEALTH", "RESTARTS"], rows)


def _steps(stack: Stack, services: list[str], *commands: str) -> Evidence:
    """Commands for the failing services, ready to paste ({s} is the service)."""
    lines = [stack.compose_command(command.format(s=service)) for service in services for command in commands]
    return {"commands to run": "\n".join(dict.fromkeys(lines))} if lines else {}


def _engine_lost(stack: Stack) -> Finding | None:
    """A failed finding when the engine stopped answering since the sweep opened the stack."""
    lost = stack.engine_lost()
    return Finding.failed(f"the Docker engine stopped answering during the sweep: {lost}") if lost else None


def services_running(stack: Stack) -> Finding:
    """Every service has a running container; a declared service with none counts as down."""
    evidence = {"docker compose ps": ps_table(stack)}
    if not stack.services:
        return Finding.failed(
            f"no containers found for Compose project {stack.project} (is the project name right? docker compose ls)",
            evidence,
        )
    down: list[str] = []
    reasons = []
    for service in stack.services:
        containers = stack.of_service(service)
        if not containers:
            down.append(service)
            reasons.append(f"{service} (no container)")
        elif not any(c.status == "running" or stack.is_completed_job(c) for c in containers):
            down.append(service)
            reasons.append(f"{service} ({containers[0].name} {containers[0].describe()})")
    if down:
        evidence |= _steps(stack, down, "logs {s} --tail=100", "up -d {s}")
        return Finding.failed(f"not running: {', '.join(reasons)}", evidence)
    return Finding.passed(evidence)


def no_crash_loop(stack: Stack) -> Finding:
    """No container restarting, exited non-zero, restarted during the sweep, or just restarted by its policy."""
    if lost := _engine_lost(stack):
        return lost
    problems: list[str] = []
    failing: list[str] = []
    evidence: Evidence = {}
    for container in stack.containers:
        now = stack.refreshed(container)
        if now is None:
            problems.append(f"{container.service} ({container.name}) was removed during the sweep")
            continue
        grew = now.restart_count - container.restart_count
        exited = now.status == "exited" and now.state.get("ExitCode") not in (0, None)
        seconds = now.running_seconds
        short_run = now.restart_count > 0 and seconds is not None and seconds < SHORT_RUN_SECONDS
        if not (now.status == "restarting" or exited or grew > 0 or short_run):
            continue
        detail = now.describe()
        if grew > 0:
            detail += f", restarted {grew}x during the sweep"
        elif short_run and now.status == "running":
            detail = f"restarted {now.restart_count}x by its restart policy, the last {seconds:.0f} s ago"
        problems.append(f"{now.service} ({now.name}) {detail}")
        failing.append(now.service)
        last_exit = now.state.get("ExitCode") if now.status != "running" else "(running again)"
        evidence[f"{now.name}: state"] = (
            f"exit code {last_exit}, restart count {now.restart_count}, restart policy {now.restart_policy}, "
            f"last finished {now.state.get('FinishedAt') or '-'}, error {now.state.get('Error') or '-'}"
        )
        evidence[f"{now.name}: last {LOG_LINES} log lines"] = now.logs(LOG_LINES) or "(empty)"
    if problems:
        evidence |= _steps(stack, sorted(set(failing)), "logs {s} --tail=100")
        return Finding.failed("; ".join(problems), evidence)
    return Finding.passed({"containers": f"{len(stack.containers)} checked"})


def no_oom_kill(stack: Stack) -> Finding:
    """No container killed by the kernel's OOM killer."""
    killed = [c for c in stack.containers if c.state.get("OOMKilled")]
    if not killed:
        return Finding.passed({"containers": f"{len(stack.containers)} checked"})
    evidence = {}
    for c in killed:
        limit = c.attrs.get("HostConfig", {}).get("Memory") or 0
        sample = stack.stats(c)
        mem = (sample or {}).get("memory_stats") or {}
        usage = mem.get("max_usage") or mem.get("usage")
        last = _bytes(usage) if usage else f"not measured ({c.describe()})"
        evidence[c.name] = (
            f"memory limit {_bytes(limit) if limit else 'none (the host ran out)'}, last usage {last}, "
            f"state {c.describe()}"
        )
    evidence |= _steps(stack, sorted({c.service for c in killed}), "logs {s} --tail=100")
    evidence["on the host"] = "dmesg | grep -i oom\ndocker stats --no-stream"
    names = ", ".join(f"{c.service} ({c.name})" for c in killed)
    return Finding.failed(f"killed by the OOM killer: {names}", evidence)


def healthchecks(stack: Stack) -> Finding:
    """Every container with a healthcheck reports healthy."""
    bad = []
    evidence = {}
    for c in stack.containers:
        health = c.health
        if health is None or health.get("Status") == "healthy" or c.status != "running":
            continue
        bad.append(f"{c.service} ({c.name}) {health.get('Status')}")
        outputs = [
            f"exit {entry.get('ExitCode')}: {' '.join(str(entry.get('Output', '')).split())[:300]}"
            for entry in (health.get("Log") or [])[-5:]
        ]
        evidence[f"{c.name}: last healthcheck outputs"] = c.scrub("\n".join(outputs)) or "(none yet)"
    if bad:
        names = sorted({b.split(" ")[0] for b in bad})
        evidence |= _steps(stack, names, "logs {s} --tail=100")
        return Finding.failed(f"healthcheck not healthy: {', '.join(bad)}", evidence)
    return Finding.passed()


def required_env(stack: Stack, required: dict[str, list[str]]) -> Finding:
    """The named variables are set, non-empty, not placeholders, and strong enough (values never shown)."""
    rows = []
    problems = []
    for service, names in sorted(required.items()):
        containers = stack.of_service(service)
        if not containers:
            problems.append(f"{service}: no container to inspect")
            continue
        for container in containers:
            env = container.env
            for name in names:
                verdict = env_verdict(name, env.get(name))
                value = env.get(name)
                rows.append([container.name, name, "set" if value is not None else "missing",
                             str(len(value or "")), verdict or "ok"])
                if verdict:
                    problems.append(f"{service} ({container.name}): {name} {verdict}")
    evidence = {"variables (values never shown)": table(["container", "variable", "present", "length", "verdict"],
                                                         rows)}
    if problems:
        evidence |= _steps(stack, sorted(required), "exec {s} env | cut -d= -f1")
        evidence["then"] = "grep POSTGRES .env   # and the other names above, in the .env the stack uses"
        return Finding.failed("; ".join(problems), evidence)
    return Finding.passed(evidence)


def env_verdict(name: str, value: str | None) -> str | None:
    """What is wrong with one variable's value, without repeating it; None when fine."""
    if value is None:
        return "is not set"
    if not value.strip():
        return "is empty"
    if value.strip().strip("'\"").lower() in PLACEHOLDERS:
        return "holds a placeholder value"
    if name in STRONG_SECRETS and len(value) < MIN_SECRET_LENGTH:
        return f"is too short ({len(value)} characters, at least {MIN_SECRET_LENGTH})"
    return None


CONFLICT = re.compile(r"port is already allocated|address already in use|address in use", re.IGNORECASE)
_LOOPBACK_OK = {"", "0.0.0.0", "::", "127.0.0.1", "localhost"}


def ports_bound(stack: Stack, timeout: float) -> Finding:
    """Every published port accepts a TCP connection; a container that lost its port is named a conflict."""
    problems = []
    rows = []
    failing: list[str] = []
    for c in stack.containers:
        declared = published_ports(stack, c)
        # A container that is not running, or ran again after failing, may have lost its port to another process:
        # then something answers on the port, but not this container.
        if c.status != "running" or c.restart_count > 0:
            reason = f"{c.state.get('Error') or ''}\n{'' if stack.engine_lost() else c.logs(30)}"
            match = CONFLICT.search(reason)
            if match:
                line = next(line for line in reason.splitlines() if CONFLICT.search(line))
                taken = _port_in(line) or ", ".join(str(p) for p, _ in declared) or "?"
                problems.append(f"port conflict: {c.service} ({c.name}) could not bind port {taken}")
                rows.append([c.name, taken, f"conflict: {match.group(0)}"])
                failing.append(c.service)
                continue
        if c.status != "running":
            rows.extend([c.name, str(p), f"not checked ({c.describe()})"] for p, _ in declared)
            continue
        for port, host_ip in declared:
            if host_ip not in _LOOPBACK_OK:
                rows.append([c.name, str(port), f"bound to {host_ip} only: not checked from here"])
                continue
            address = stack.engine_host if host_ip != "127.0.0.1" or stack.engine_is_local else None
            if address is None:
                rows.append([c.name, str(port), "bound to the engine's loopback: not checked from here"])
                continue
            error = _connect_error(address, port, timeout)
            rows.append([c.name, str(port), "listening" if error is None else error])
            if error is not None:
                problems.append(f"{c.service} ({c.name}) publishes port {port} but {address}:{port} {error}")
                failing.append(c.service)
    evidence = {"ports": table(["container", "port", "state"], rows)} if rows else {}
    if problems:
        evidence |= _steps(stack, sorted(set(failing)), "logs {s} --tail=100", "up -d {s}")
        evidence["who holds a port"] = "ss -ltnp | grep :<port>"
        return Finding.failed("; ".join(problems), evidence)
    return Finding.passed(evidence)


def published_ports(stack: Stack, container: Container) -> list[tuple[int, str]]:
    """(host port, host IP) a container publishes; in host network mode, the ports it listens on."""
    ports: set[tuple[int, str]] = set()
    host_config = container.attrs.get("HostConfig", {})
    if host_config.get("NetworkMode") == "host":  # no NAT: the engine discards bindings, the process listens itself
        if stack.compose is not None and stack.compose.services.get(container.service):
            listening = stack.compose.host_ports(container.service)
        else:
            listening = [int(p.split("/")[0]) for p in container.attrs.get("Config", {}).get("ExposedPorts") or {}
                         if p.endswith("/tcp") and p.split("/")[0].isdigit()]
        return [(port, "") for port in sorted(set(listening))]
    live = (container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
    bindings = live if container.status == "running" and live else host_config.get("PortBindings") or {}
    for spec, hosts in bindings.items():
        if not spec.endswith("/tcp"):
            continue
        for host in hosts or []:
            if str(host.get("HostPort") or "").isdigit():
                ports.add((int(host["HostPort"]), str(host.get("HostIp") or "")))
    # One row per port: a port bound on both IPv4 and IPv6 is one port.
    return sorted({port: ip for port, ip in sorted(ports, reverse=True)}.items())


_PORT_IN_ERROR = re.compile(
    r"(?:(?:\d{1,3}\.){3}\d{1,3}|\[[0-9a-fA-F:]*\]|localhost|::):(\d{1,5})\b|\bport (\d{1,5})\b", re.IGNORECASE
)


def _port_in(line: str) -> str | None:
    """The port an engine or server error line names ("Bind for 0.0.0.0:8000 failed", "listen tcp :5432")."""
    match = _PORT_IN_ERROR.search(line)
    return (match.group(1) or match.group(2)) if match else None


def _connect_error(host: str, port: int, timeout: float) -> str | None:
    """None when `host:port` accepts a TCP connection, else why not, in a few words."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except ConnectionRefusedError:
        return "refuses connections"
    except TimeoutError:
        return f"timed out after {timeout:g} s"
    except OSError as exc:
        return f"cannot connect ({exc.strerror or type(exc).__name__})"


# Whatever the image has, in order: a netcat with -z, python3, bash's /dev/tcp, busybox's nc -e (runs `true` once
# connected), a plain nc under timeout (still connected when timeout ends it: exit 143; the name is looked up
# first so that a slow lookup ended by timeout is no false pass). Each under `timeout` when the image has it, so
# a slow lookup cannot outlast the engine call. Nothing is written in the container.
REACH_SCRIPT = (
    "T=; command -v timeout >/dev/null 2>&1 && T='timeout {t}'; "
    "if command -v nc >/dev/null 2>&1 && nc -h 2>&1 | grep -q -e ' -z'; then "
    "$T nc -z -w {t} {h} {p} 2>&1; rc=$?; "
    "elif command -v python3 >/dev/null 2>&1; then $T python3 -c \"import socket, sys\n"
    "try: socket.create_connection(('{h}', {p}), {t})\nexcept OSError as e: sys.exit(str(e))\" 2>&1; rc=$?; "
    "elif command -v bash >/dev/null 2>&1; then "
    "$T bash -c 'exec 3<>/dev/tcp/{h}/{p}' 2>&1; rc=$?; "
    "elif command -v nc >/dev/null 2>&1 && nc -h 2>&1 | grep -q -e ' -e PROG'; then "
    "$T nc -w {t} -e true {h} {p} 2>&1; rc=$?; "
    "elif command -v nc >/dev/null 2>&1 && [ -n \"$T\" ]; then "
    "if command -v nslookup >/dev/null 2>&1 && ! echo {h} | grep -qE '^[0-9.]+$' "
    "&& ! $T nslookup {h} >/dev/null 2>&1; then echo 'bad address {h}'; rc=1; else "
    "$T nc {h} {p} </dev/null 2>&1; rc=$?; {{ [ $rc -eq 143 ] || [ $rc -eq 124 ]; }} && rc=0; fi; "
    "else echo OPSCHECK_NO_TOOL; exit 0; fi; "
    "if [ $rc -eq 0 ]; then echo OPSCHECK_OK; elif [ $rc -eq 143 ] || [ $rc -eq 124 ]; then "
    "echo 'timed out after {t} s'; fi"
)
_UNRESOLVED = re.compile(
    r"bad address|not known|resolve|getaddrinfo|NXDOMAIN|Name does not|Unknown host|nodename", re.IGNORECASE
)


def db_address(settings: Settings) -> str:
    """`stack_db_address`, else the database service on the port of `database_url` (5432 by default)."""
    if settings.stack_db_address:
        return settings.stack_db_address
    port = urlsplit(settings.database_url).port if settings.database_url else None
    return f"{settings.db_service}:{port or 5432}"


def backend_reaches_db(stack: Stack, service: str, address: str, timeout: float) -> Finding:
    """From inside the backend container, the database host resolves and its port accepts TCP."""
    if lost := _engine_lost(stack):
        return lost
    host, _, port_text = address.rpartition(":")
    if not host or not port_text.isdigit() or not re.fullmatch(r"[A-Za-z0-9._-]+", host):
        return Finding.failed(f"stack_db_address {address!r} is not host:port")
    containers = stack.of_service(service)
    if not containers:
        return Finding.failed(
            f"no container of service {service} in project {stack.project} to test from "
            "(set backend_service to the service that talks to the database)"
        )
    running = [c for c in containers if c.status == "running"]
    if not running:
        return Finding.failed(f"{service} ({containers[0].name}) is {containers[0].describe()}: cannot test from it")
    container = running[0]
    seconds = max(1, round(timeout))
    script = REACH_SCRIPT.format(h=host, p=int(port_text), t=seconds)
    try:
        exit_code, text = container.exec(["sh", "-c", script])
    except Exception as exc:  # noqa: BLE001 - the engine refused the exec (container stopped meanwhile)
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        return Finding.failed(f"cannot run a probe inside {container.name}: {type(exc).__name__}: {first}")
    evidence = {f"from {container.name}": " ".join(text.replace("OPSCHECK_OK", "connected").split())[:500]
                or "(no output)"}
    steps = {"commands to run": "\n".join([
        stack.compose_command(f"ps {host}") if host in stack.services else "docker compose ps",
        stack.compose_command(f"exec {service} ping -c 1 {host}"),
        "docker network ls",
    ])}
    if "OPSCHECK_OK" in text:
        return Finding.passed(evidence)
    if "OPSCHECK_NO_TOOL" in text:
        return Finding.failed(
            f"cannot test {address} from {service} ({container.name}): the image has none of nc, python3 "
            "or bash",
            evidence,
        )
    if exit_code in (126, 127) and "OPSCHECK" not in text:
        return Finding.failed(
            f"cannot test {address} from {service} ({container.name}): the image has no shell (sh)", evidence
        )
    if _UNRESOLVED.search(text):
        return Finding.failed(f"{service} ({container.name}) cannot resolve {host}", evidence | steps)
    reason = next((why for word, why in (("refused", "connection refused"), ("timed out", "timed out"),
                                         ("unreachable", "network unreachable")) if word in text.lower()), None)
    return Finding.failed(
        f"{service} ({container.name}) cannot connect to {address}" + (f": {reason}" if reason else ""),
        evidence | steps,
    )


def logs_clean(stack: Stack, patterns: list[str]) -> Finding:
    """No error pattern in the log tail of any container since it (last) started."""
    if lost := _engine_lost(stack):
        return lost
    regex = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
    evidence = {}
    dirty = []
    services: list[str] = []
    for c in stack.containers:
        lines = c.logs_since_start(LOG_SCAN_LINES).splitlines()
        hits = [i for i, line in enumerate(lines) if regex.search(line)]
        if not hits:
            continue
        dirty.append(f"{c.service} ({c.name}): {len(hits)} matching line(s)")
        services.append(c.service)
        shown: list[str] = []
        last = -1
        for i in hits[:10]:
            start = max(last + 1, i - 2)
            if start > last + 1 and shown:
                shown.append("--")
            shown.extend(lines[start : i + 4])
            last = min(len(lines) - 1, i + 3)
        evidence[f"{c.name}: matching lines"] = "\n".join(shown)
    if dirty:
        evidence |= _steps(stack, sorted(set(services)), "logs {s} --tail=100")
        return Finding.failed("; ".join(dirty), evidence)
    return Finding.passed({"containers": f"{len(stack.containers)} scanned, last {LOG_SCAN_LINES} lines each"})


def disk_free(stack: Stack, percent_limit: float) -> Finding | None:
    """Free space of the engine's data filesystem (DockerRootDir); None when the engine is not on this host."""
    root = str(stack.engine_info.get("DockerRootDir") or "/var/lib/docker")
    if not stack.engine_is_local or not Path(root).exists():
        return None
    vfs = os.statvfs(root)
    total, free_bytes = vfs.f_blocks * vfs.f_frsize, vfs.f_bavail * vfs.f_frsize
    free = 100.0 * free_bytes / total if total else 0.0
    evidence = {
        "disk": f"{root}: {_bytes(free_bytes)} free of {_bytes(total)} ({free:.1f}% free), "
        f"{vfs.f_favail} inodes free",
    }
    usage = _usage_split(stack)
    if usage:
        evidence["docker system df"] = usage
    if free < percent_limit:
        return Finding.failed(f"only {free:.1f}% free on {root} (limit {percent_limit:g}%)", evidence)
    if vfs.f_files and 100.0 * vfs.f_favail / vfs.f_files < percent_limit:
        return Finding.failed(f"only {100.0 * vfs.f_favail / vfs.f_files:.1f}% inodes free on {root}", evidence)
    return Finding.passed(evidence)


def _usage_split(stack: Stack) -> str | None:
    """What the engine's disk holds, as `docker system df` splits it; None when the engine cannot say."""
    if stack.engine_lost():
        return None
    try:
        df = stack.client.df()
        volumes = sum(((v.get("UsageData") or {}).get("Size") or 0) for v in df.get("Volumes") or [])
        return (
            f"images {_bytes(df.get('LayersSize') or 0)}, containers "
            f"{_bytes(sum(c.get('SizeRw') or 0 for c in df.get('Containers') or []))}, "
            f"volumes {_bytes(max(volumes, 0))}, build cache {_bytes(df.get('BuilderSize') or 0)}"
        )
    except Exception:  # noqa: BLE001 - the split is a help, the free space is the verdict
        return None


def _samples(stack: Stack) -> tuple[list[tuple[Container, dict[str, Any]]], list[str]]:
    """The stats sample of each running container, and `name: reason` for those that have none."""
    samples, missing = [], []
    for c in stack.containers:
        sample = stack.stats_or_reason(c)
        if isinstance(sample, str):
            missing.append(f"{c.name}: {sample}")
        elif sample is not None:
            samples.append((c, sample))
    return samples, missing


def memory_headroom(stack: Stack, percent_limit: float) -> Finding:
    """Each running container's memory usage against its limit."""
    rows, over = [], []
    samples, missing = _samples(stack)
    for c, sample in samples:
        mem = sample.get("memory_stats") or {}
        usage, limit = mem.get("usage"), mem.get("limit")
        if not usage or not limit:
            continue
        stats = mem.get("stats") or {}
        cache = stats.get("inactive_file", stats.get("total_inactive_file", 0))
        used = usage - cache if cache < usage else usage
        percent = 100.0 * used / limit
        rows.append([c.name, _bytes(used), _bytes(limit), f"{percent:.1f}%"])
        if percent >= percent_limit:
            over.append((c, f"{c.service} ({c.name}) at {percent:.0f}% of {_bytes(limit)}"))
    evidence = {"memory": table(["container", "usage", "limit", "percent"], rows)} if rows else {}
    if missing:
        evidence["not sampled"] = "\n".join(missing)
    if over:
        evidence |= _steps(stack, sorted({c.service for c, _ in over}), "restart {s}   # frees memory for now")
        evidence["then"] = "raise mem_limit in docker-compose.yml and look for the leak: docker stats --no-stream"
        return Finding.failed(f"memory over {percent_limit:g}%: {', '.join(t for _, t in over)}", evidence)
    if missing and not rows:
        return Finding.failed(f"no memory figures from the engine: {missing[0]}", evidence)
    return Finding.passed(evidence)


def cpu(stack: Stack, percent_limit: float) -> Finding:
    """Each running container's CPU use over the stats sample, against the limit."""
    rows, over = [], []
    samples, missing = _samples(stack)
    for c, sample in samples:
        percent = cpu_percent(sample)
        if percent is None:
            continue
        rows.append([c.name, f"{percent:.1f}%"])
        if percent >= percent_limit:
            over.append((c, f"{c.service} ({c.name}) at {percent:.0f}%"))
    evidence = {"cpu": table(["container", "cpu"], rows)} if rows else {}
    if missing:
        evidence["not sampled"] = "\n".join(missing)
    if over:
        evidence |= _steps(stack, sorted({c.service for c, _ in over}), "logs {s} --tail=100")
        return Finding.failed(f"CPU over {percent_limit:g}%: {', '.join(t for _, t in over)}", evidence)
    if missing and not rows:
        return Finding.failed(f"no CPU figures from the engine: {missing[0]}", evidence)
    return Finding.passed(evidence)


def cpu_percent(sample: dict[str, Any]) -> float | None:
    """`docker stats`' CPU % from one sample: container delta over system delta, times online CPUs."""
    now, before = sample.get("cpu_stats") or {}, sample.get("precpu_stats") or {}
    try:
        delta = now["cpu_usage"]["total_usage"] - before["cpu_usage"]["total_usage"]
        system = now["system_cpu_usage"] - before["system_cpu_usage"]
    except (KeyError, TypeError):
        return None
    cpus = now.get("online_cpus") or len(now["cpu_usage"].get("percpu_usage") or []) or 1
    return 100.0 * delta / system * cpus if system > 0 and delta >= 0 else 0.0


def _bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
