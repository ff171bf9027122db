"""The Compose stack through the Docker Engine API: containers by Compose's labels, their state, logs,
stats and environment. It only reads: nothing is started, restarted or removed."""

from __future__ import annotations

import os
import re
import shutil
import socket
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from ..targets import opener
from .result import Evidence, Finding, TargetUnreachable, table

PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
ONEOFF = "com.docker.compose.oneoff"
LOG_LINES = 100
LOG_SCAN_LINES = 500
LOG_LINE_LIMIT = 500
PLACEHOLDERS = {"changethis", "changeme", "secret", "password", "todo", "xxx"}
STRONG_SECRETS = {"SECRET_KEY", "JWT_SECRET"}
MIN_SECRET_LENGTH = 32


def project_name(settings: Settings) -> str:
    """The Compose project: `compose_project`, else derived from `compose_file` the way Compose does."""
    if settings.compose_project:
        return settings.compose_project
    assert settings.compose_file is not None
    env_name = os.environ.get("COMPOSE_PROJECT_NAME")
    if env_name:
        return env_name
    path = settings.path(settings.compose_file)
    match = re.search(r"^name:\s*['\"]?([^'\"\s#]+)", _read(path), re.MULTILINE)
    if match:
        return match.group(1)
    return re.sub(r"[^a-z0-9_-]", "", path.parent.name.lower())


def declared_services(settings: Settings) -> list[str]:
    """The services the compose file declares (empty when only a project name is configured)."""
    if not settings.compose_file:
        return []
    text = _read(settings.path(settings.compose_file))
    block = re.search(r"^services:\s*\n((?:[ \t]+.*\n|\s*\n)*)", text + "\n", re.MULTILINE)
    if not block:
        return []
    indents = [len(m.group(1)) for m in re.finditer(r"^([ \t]+)\S", block.group(1), re.MULTILINE)]
    if not indents:
        return []
    first = min(indents)
    pattern = rf"^[ \t]{{{first}}}([A-Za-z0-9._-]+):"
    return re.findall(pattern, block.group(1), re.MULTILINE)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TargetUnreachable("stack", f"cannot read compose file {path}: {exc.strerror}") from None


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
    def health(self) -> dict[str, Any] | None:
        health = self.state.get("Health")
        return dict(health) if health else None

    @property
    def env(self) -> dict[str, str]:
        """The container's environment (values are secrets: never show them)."""
        pairs = (item.partition("=") for item in self.attrs.get("Config", {}).get("Env") or [])
        return {k: v for k, _, v in pairs}

    def describe(self) -> str:
        state = self.state
        if self.status == "exited":
            return f"exited with code {state.get('ExitCode')}"
        if self.status == "restarting":
            return f"restarting (restart count {self.restart_count}, last exit code {state.get('ExitCode')})"
        return self.status

    def logs(self, lines: int = LOG_LINES) -> str:
        """The last `lines` of the container's log, each line capped."""
        try:
            raw = self.handle.logs(tail=lines, timestamps=False)
        except Exception as exc:  # noqa: BLE001 - a vanished container has no logs; say so
            return f"(logs unavailable: {type(exc).__name__})"
        text = raw.decode("utf-8", errors="replace")
        return "\n".join(line[:LOG_LINE_LIMIT] for line in text.splitlines())


@dataclass
class Stack:
    """The Compose project as the engine sees it, opened once per sweep."""

    project: str
    client: Any
    containers: list[Container]
    declared: list[str]
    timeout: float
    engine_info: dict[str, Any] = field(default_factory=dict)
    _stats: dict[str, Future[dict[str, Any]]] = field(default_factory=dict)
    _pool: ThreadPoolExecutor | None = None

    @property
    def services(self) -> list[str]:
        return sorted(set(self.declared) | {c.service for c in self.containers})

    def of_service(self, service: str) -> list[Container]:
        return [c for c in self.containers if c.service == service]

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

    def crashed_services(self) -> dict[str, str]:
        """Services with a container that exited non-zero or is restarting: waiting will not heal them."""
        crashed: dict[str, str] = {}
        for container in self.containers:
            if container.status == "restarting" or (
                container.status == "exited" and container.state.get("ExitCode") not in (0, None)
            ):
                crashed[container.service] = container.describe()
        return crashed

    def start_stats(self) -> None:
        """Sample the stats of every running container at once, in the background (each takes ~1 s)."""
        running = [c for c in self.containers if c.status == "running"]
        if not running:
            return
        self._pool = ThreadPoolExecutor(max_workers=min(16, len(running)), thread_name_prefix="opscheck-stats")
        for container in running:
            self._stats[container.name] = self._pool.submit(container.handle.stats, stream=False)

    def stats(self, container: Container) -> dict[str, Any] | None:
        """The stats sample of `container` (None when it was not running or the sample failed)."""
        future = self._stats.get(container.name)
        if future is None:
            return None
        try:
            return dict(future.result(timeout=self.timeout + 2))
        except Exception:  # noqa: BLE001 - a sample that failed is reported as missing
            return None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()


def connect_engine(timeout: float) -> Any:
    """A Docker SDK client on the engine from the environment, or TargetUnreachable saying why."""
    import docker

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists():
        raise TargetUnreachable("docker", f"no Docker engine at {host}: is dockerd running? (or set DOCKER_HOST)")
    try:
        client = docker.from_env(timeout=max(1, round(timeout)))
        client.ping()
        return client
    except docker.errors.DockerException as exc:
        text = str(exc)
        if "Permission denied" in text:
            cause = f"permission denied on {host}: run as a member of the docker group, or as root"
        elif "No such file" in text or "FileNotFoundError" in text:
            cause = f"no Docker engine at {host}: is dockerd running? (or set DOCKER_HOST)"
        elif "Connection refused" in text:
            cause = f"connection refused by the Docker engine at {host}"
        elif "timed out" in text.lower() or "timeout" in text.lower():
            cause = f"timed out after {timeout:g} s waiting for the Docker engine at {host}"
        else:
            cause = f"cannot reach the Docker engine at {host}: {text.splitlines()[0][:200]}"
        raise TargetUnreachable("docker", cause) from None


@opener("stack", requires="compose_project|compose_file")
def open_stack(settings: Settings) -> Stack:
    """List the project's containers once and start sampling their stats concurrently."""
    client = connect_engine(settings.timeout)
    project = project_name(settings)
    declared = declared_services(settings)
    try:
        listed = client.containers.list(all=True, filters={"label": f"{PROJECT}={project}"})
        info = client.info()
    except Exception as exc:  # noqa: BLE001 - the engine went away between ping and list
        client.close()
        raise TargetUnreachable("docker", f"Docker engine stopped answering: {type(exc).__name__}") from None
    containers = [
        Container(c.name, c.labels.get(SERVICE, "?"), c.attrs, c)
        for c in listed
        if c.labels.get(ONEOFF, "False") != "True"
    ]
    stack = Stack(project, client, sorted(containers, key=lambda c: c.name), declared, settings.timeout, info)
    stack.start_stats()
    return stack


def ps_table(stack: Stack) -> str:
    """A `docker compose ps`-like table of the project."""
    rows = []
    for service in stack.services:
        containers = stack.of_service(service)
        if not containers:
            rows.append(["-", service, "no container", "-", "-"])
        for c in containers:
            health = c.health["Status"] if c.health else "-"
            rows.append([c.name, service, c.describe(), health, str(c.restart_count)])
    return table(["NAME", "SERVICE", "STATE", "HEALTH", "RESTARTS"], rows)


def services_running(stack: Stack) -> Finding:
    """Every service has a running container; a declared service with none counts as down."""
    evidence = {"docker compose ps": ps_table(stack)}
    if not stack.services:
        return Finding.failed(f"no containers found for Compose project {stack.project}", evidence)
    down = []
    for service in stack.services:
        containers = stack.of_service(service)
        if not containers:
            down.append(f"{service} (no container)")
        elif not any(c.status == "running" for c in containers):
            down.append(f"{service} ({containers[0].name} {containers[0].describe()})")
    if down:
        return Finding.failed(f"not running: {', '.join(down)}", evidence)
    return Finding.passed(evidence)


def no_crash_loop(stack: Stack) -> Finding:
    """No container restarting, exited non-zero, or restarted during the sweep."""
    problems: list[str] = []
    evidence: Evidence = {}
    for container in stack.containers:
        now = stack.refreshed(container)
        if now is None:
            problems.append(f"{container.service} ({container.name}) was removed during the sweep")
            continue
        grew = now.restart_count > container.restart_count
        exited = now.status == "exited" and now.state.get("ExitCode") not in (0, None)
        if now.status == "restarting" or exited or grew:
            detail = now.describe() + (f", restarted {now.restart_count - container.restart_count}x during the sweep"
                                       if grew else "")
            problems.append(f"{now.service} ({now.name}) {detail}")
            evidence[f"{now.name}: state"] = (
                f"exit code {now.state.get('ExitCode')}, restart count {now.restart_count}, "
                f"error {now.state.get('Error') or '-'}"
            )
            evidence[f"{now.name}: last {LOG_LINES} log lines"] = now.logs(LOG_LINES)
    if problems:
        return Finding.failed("; ".join(problems), evidence)
    return Finding.passed({"containers": f"{len(stack.containers)} checked"})


def no_oom_kill(stack: Stack) -> Finding:
    """No container killed by the kernel's OOM killer."""
    killed = [c for c in stack.containers if c.state.get("OOMKilled")]
    if not killed:
        return Finding.passed()
    evidence = {}
    for c in killed:
        limit = c.attrs.get("HostConfig", {}).get("Memory") or 0
        sample = stack.stats(c)
        usage = sample.get("memory_stats", {}).get("max_usage") or sample.get("memory_stats", {}).get("usage") \
            if sample else None
        evidence[c.name] = (
            f"memory limit {_bytes(limit) if limit else 'none'}, last usage {_bytes(usage) if usage else 'unknown'}, "
            f"state {c.describe()}"
        )
    names = ", ".join(f"{c.service} ({c.name})" for c in killed)
    return Finding.failed(f"killed by the OOM killer: {names}", evidence)


def healthchecks(stack: Stack) -> Finding:
    """Every container with a healthcheck reports healthy."""
    bad = []
    evidence = {}
    for c in stack.containers:
        health = c.health
        if health is None or health.get("Status") == "healthy":
            continue
        bad.append(f"{c.service} ({c.name}) {health.get('Status')}")
        outputs = [
            f"exit {entry.get('ExitCode')}: {' '.join(str(entry.get('Output', '')).split())[:300]}"
            for entry in (health.get("Log") or [])[-5:]
        ]
        evidence[f"{c.name}: last healthcheck outputs"] = "\n".join(outputs) or "(none yet)"
    if bad:
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
        env = containers[0].env
        for name in names:
            verdict = env_verdict(name, env.get(name))
            rows.append([service, name, "set" if env.get(name) else "missing", str(len(env.get(name) or "")),
                         verdict or "ok"])
            if verdict:
                problems.append(f"{service}: {name} {verdict}")
    evidence = {"variables (values never shown)": table(["service", "variable", "present", "length", "verdict"], rows)}
    if problems:
        return Finding.failed("; ".join(problems), evidence)
    return Finding.passed(evidence)


def env_verdict(name: str, value: str | None) -> str | None:
    """What is wrong with one variable's value, without repeating it; None when fine."""
    if value is None:
        return "is not set"
    if not value.strip():
        return "is empty"
    if value.strip().lower() in PLACEHOLDERS:
        return "holds a placeholder value"
    if name in STRONG_SECRETS and len(value) < MIN_SECRET_LENGTH:
        return f"is too short ({len(value)} characters, at least {MIN_SECRET_LENGTH})"
    return None


CONFLICT = re.compile(r"port is already allocated|address already in use", re.IGNORECASE)


def ports_bound(stack: Stack, timeout: float) -> Finding:
    """Every published port accepts a TCP connection; a container that lost its port is named a conflict."""
    problems = []
    rows = []
    for c in stack.containers:
        reason = (c.state.get("Error") or "") if c.status != "running" else ""
        if c.status != "running":
            reason = reason or c.logs(30)
        if CONFLICT.search(reason):
            taken = _port_in(reason) or ", ".join(str(p) for p in published_ports(c)) or "?"
            problems.append(f"port conflict: {c.service} ({c.name}) could not bind port {taken}")
            rows.append([c.name, taken, "conflict"])
            continue
        for port in published_ports(c):
            ok = _accepts("127.0.0.1", port, timeout)
            rows.append([c.name, str(port), "listening" if ok else "not listening"])
            if not ok:
                problems.append(f"{c.service} ({c.name}) publishes port {port} but nothing accepts on it")
    evidence = {"ports": table(["container", "port", "state"], rows)} if rows else {}
    if problems:
        return Finding.failed("; ".join(problems), evidence)
    return Finding.passed(evidence)


def published_ports(container: Container) -> list[int]:
    """Host ports a container publishes (or, in host network mode, the ports it exposes)."""
    ports: set[int] = set()
    bindings = container.attrs.get("HostConfig", {}).get("PortBindings") or {}
    for hosts in bindings.values():
        for host in hosts or []:
            if host.get("HostPort"):
                ports.add(int(host["HostPort"]))
    if container.attrs.get("HostConfig", {}).get("NetworkMode") == "host":
        for spec in container.attrs.get("Config", {}).get("ExposedPorts") or {}:
            port, _, protocol = spec.partition("/")
            if protocol in ("", "tcp") and port.isdigit():
                ports.add(int(port))
    return sorted(ports)


def _port_in(text: str) -> str | None:
    match = re.search(r"(?:0\.0\.0\.0|127\.0\.0\.1|\[::\]|:::?)?:(\d{2,5})\b", text)
    return match.group(1) if match else None


def _accepts(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# Whatever the image has, in order: python3, a netcat with -z, bash's /dev/tcp, busybox's nc under timeout
# (still connected when timeout ends it: exit 143). Nothing is written in the container.
REACH_SCRIPT = (
    "if command -v python3 >/dev/null 2>&1; then python3 -c \"import socket; "
    "socket.create_connection(('{h}', {p}), {t}); print('OPSCHECK_OK')\" 2>&1; "
    "elif command -v nc >/dev/null 2>&1 && nc -h 2>&1 | grep -q -e ' -z'; then "
    "nc -z -w {t} {h} {p} 2>&1 && echo OPSCHECK_OK; "
    "elif command -v bash >/dev/null 2>&1; then "
    "timeout {t} bash -c 'exec 3<>/dev/tcp/{h}/{p}' 2>&1 && echo OPSCHECK_OK; "
    "elif command -v nc >/dev/null 2>&1 && command -v timeout >/dev/null 2>&1; then "
    "if command -v nslookup >/dev/null 2>&1 && ! echo {h} | grep -qE '^[0-9.]+$' "
    "&& ! timeout {t} nslookup {h} >/dev/null 2>&1; then echo 'bad address {h}'; else "
    "out=$(timeout {t} nc {h} {p} </dev/null 2>&1); rc=$?; echo \"$out\"; "
    "if [ $rc -eq 0 ] || [ $rc -eq 143 ]; then echo OPSCHECK_OK; fi; fi; "
    "else echo OPSCHECK_NO_TOOL; fi"
)


def backend_reaches_db(stack: Stack, service: str, address: str, timeout: float) -> Finding:
    """From inside the backend container, the database host resolves and its port accepts TCP."""
    host, _, port_text = address.rpartition(":")
    if not host or not port_text.isdigit() or not re.fullmatch(r"[A-Za-z0-9._-]+", host):
        return Finding.failed(f"stack_db_address {address!r} is not host:port")
    running = [c for c in stack.of_service(service) if c.status == "running"]
    if not running:
        return Finding.failed(f"no running container for service {service} to test from")
    container = running[0]
    seconds = max(1, round(timeout))
    script = REACH_SCRIPT.format(h=host, p=int(port_text), t=seconds)
    try:
        exit_code, output = container.handle.exec_run(["sh", "-c", script], demux=False)
    except Exception as exc:  # noqa: BLE001 - an image without a shell cannot run the probe
        return Finding.failed(f"cannot run a probe inside {container.name}: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200]}")
    text = (output or b"").decode("utf-8", errors="replace")
    evidence = {f"from {container.name}": " ".join(text.split())[:500] or "(no output)"}
    if "OPSCHECK_OK" in text:
        return Finding.passed(evidence)
    if "OPSCHECK_NO_TOOL" in text:
        return Finding.failed(f"{container.name} has neither nc, python3 nor bash to test {address} with", evidence)
    if re.search(r"bad address|not known|resolve|getaddrinfo|NXDOMAIN|Name does not", text, re.IGNORECASE):
        return Finding.failed(f"{service} cannot resolve {host} (exit {exit_code})", evidence)
    return Finding.failed(f"{service} cannot connect to {address} (exit {exit_code})", evidence)


def logs_clean(stack: Stack, patterns: list[str]) -> Finding:
    """No error pattern in the recent log tail of any container (since it started)."""
    regex = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
    evidence = {}
    dirty = []
    for c in stack.containers:
        lines = c.logs(LOG_SCAN_LINES).splitlines()
        hits = [i for i, line in enumerate(lines) if regex.search(line)]
        if not hits:
            continue
        dirty.append(f"{c.service} ({c.name}): {len(hits)} matching line(s)")
        shown: list[str] = []
        for i in hits[:5]:
            shown.extend(lines[max(0, i - 1) : i + 3])
            shown.append("--")
        evidence[f"{c.name}: matching lines"] = "\n".join(shown)
    if dirty:
        return Finding.failed("; ".join(dirty), evidence)
    return Finding.passed()


def disk_free(stack: Stack, percent_limit: float) -> Finding:
    """Free space of the engine's data filesystem (DockerRootDir) above the limit."""
    root = str(stack.engine_info.get("DockerRootDir") or "/var/lib/docker")
    if not Path(root).exists():
        return Finding.failed(f"cannot measure {root}: the engine is not on this machine (df -h there)")
    usage = shutil.disk_usage(root)
    free = 100.0 * usage.free / usage.total
    evidence = {"disk": f"{root}: {_bytes(usage.free)} free of {_bytes(usage.total)} ({free:.1f}% free)"}
    if free < percent_limit:
        return Finding.failed(f"only {free:.1f}% free on {root} (limit {percent_limit:g}%)", evidence)
    return Finding.passed(evidence)


def memory_headroom(stack: Stack, percent_limit: float) -> Finding:
    """Each running container's memory usage against its limit."""
    rows, over = [], []
    for c in stack.containers:
        sample = stack.stats(c)
        if not sample:
            continue
        mem = sample.get("memory_stats") or {}
        usage, limit = mem.get("usage"), mem.get("limit")
        if not usage or not limit:
            continue
        cache = (mem.get("stats") or {}).get("inactive_file", 0)
        percent = 100.0 * (usage - cache) / limit
        rows.append([c.name, _bytes(usage - cache), _bytes(limit), f"{percent:.1f}%"])
        if percent >= percent_limit:
            over.append(f"{c.service} ({c.name}) at {percent:.0f}% of {_bytes(limit)}")
    evidence = {"memory": table(["container", "usage", "limit", "percent"], rows)} if rows else {}
    if over:
        return Finding.failed(f"memory over {percent_limit:g}%: {', '.join(over)}", evidence)
    return Finding.passed(evidence)


def cpu(stack: Stack, percent_limit: float) -> Finding:
    """Each running container's CPU use over the stats sample, against the limit."""
    rows, over = [], []
    for c in stack.containers:
        sample = stack.stats(c)
        if not sample:
            continue
        percent = cpu_percent(sample)
        if percent is None:
            continue
        rows.append([c.name, f"{percent:.1f}%"])
        if percent >= percent_limit:
            over.append(f"{c.service} ({c.name}) at {percent:.0f}%")
    evidence = {"cpu": table(["container", "cpu"], rows)} if rows else {}
    if over:
        return Finding.failed(f"CPU over {percent_limit:g}%: {', '.join(over)}", evidence)
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

