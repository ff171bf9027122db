"""Network: the stack's published ports answer, and the backend reaches the database over the stack's
network (tested from inside its container)."""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

from ...config import Settings
from ..resource.stack import Container, Stack
from ..result import Finding, table
from .common import engine_lost as _engine_lost
from .stack import _steps

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
        listening = stack.host_network_ports(container.service)
        if listening is None:
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


# Where a backend keeps its database's address, in the order a backend reads them: a URL, or a host variable
# with its port variable (FastAPI's POSTGRES_SERVER/POSTGRES_PORT, libpq's PGHOST/PGPORT, ...).
_URL_VARIABLES = ("DATABASE_URL", "POSTGRES_URL", "POSTGRESQL_URL", "DB_URL", "DATABASE_URI", "SQLALCHEMY_DATABASE_URI")
_HOST_VARIABLES = (
    ("POSTGRES_SERVER", "POSTGRES_PORT"), ("POSTGRES_HOST", "POSTGRES_PORT"), ("DB_HOST", "DB_PORT"),
    ("DATABASE_HOST", "DATABASE_PORT"), ("PGHOST", "PGPORT"),
)


def configured_db_address(env: dict[str, str]) -> tuple[str, str] | None:
    """The database's host:port as a container's environment configures it, and the variables it came from;
    None when the environment does not say (never a guess). Values are secrets: only host and port are read."""
    for name in _URL_VARIABLES:
        value = env.get(name, "")
        if "://" not in value:
            continue
        parts = urlsplit(value)
        try:
            port = parts.port or 5432
        except ValueError:
            continue
        if parts.hostname:
            return f"{parts.hostname}:{port}", name
    for host_name, port_name in _HOST_VARIABLES:
        host = env.get(host_name, "").strip()
        if host and not host.startswith("/"):  # a path is a Unix socket: nothing to test over TCP
            given = env.get(port_name, "").strip()
            return f"{host}:{given if given.isdigit() else 5432}", host_name + (f"/{port_name}" if given else "")
    return None


def backend_db_address(stack: Stack, settings: Settings) -> tuple[str, str] | str:
    """(host:port, where it comes from) that `stack.backend_reaches_db` tests: `stack_db_address`, else what the
    backend's own container is configured with; or, when nothing tells it, the reason to skip and what to set."""
    if settings.stack_db_address:
        return settings.stack_db_address, "stack_db_address"
    containers = stack.of_service(settings.backend_service)
    if not containers:  # nothing to read the address from, nor to test from: backend_reaches_db says so
        return "", ""
    container = next((c for c in containers if c.status == "running"), containers[0])
    found = configured_db_address(container.env)
    if found is None:
        return (
            f"not configured: stack_db_address (the {settings.backend_service} container has no DATABASE_URL, "
            'POSTGRES_SERVER, POSTGRES_HOST or DB_HOST: set stack_db_address = "host:port" as the backend '
            "reaches the database)"
        )
    address, variables = found
    return address, f"{variables} of {container.name}"


def backend_reaches_db(stack: Stack, service: str, address: str, timeout: float, source: str = "") -> Finding:
    """From inside the backend container, the database host resolves and its port accepts TCP."""
    if lost := _engine_lost(stack):
        return lost
    containers = stack.of_service(service)
    host, _, port_text = address.rpartition(":")
    if containers and (not host or not port_text.isdigit() or not re.fullmatch(r"[A-Za-z0-9._-]+", host)):
        return Finding.failed(f"{source or 'stack_db_address'} {address!r} is not host:port")
    if not containers:
        return Finding.failed(
            f"no container of service {service} in {stack.noun} {stack.name} to test from "
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
    evidence = {"database address": f"{address} ({source})"} if source else {}
    evidence[f"from {container.name}"] = " ".join(text.replace("OPSCHECK_OK", "connected").split())[:500] or \
        "(no output)"
    steps = {"commands to run": "\n".join([
        stack.command(f"ps {host}" if host in stack.services else "ps"),
        stack.command(f"exec {service} ping -c 1 {host}"),
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
