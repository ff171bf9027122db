"""A Docker Swarm of the tests' own, on this machine: a dockerd started here (own socket, data root, exec root and
pidfile under one temporary folder; the flags of `realservices`' engine), `docker swarm init` on loopback, the
busybox image imported into it, stacks deployed from host-networked stack files with Debian's docker CLI, and
torn down at the end (stacks removed, `docker_gwbridge` removed before dockerd stops, then its folder).

`two_node_swarm` adds the lost-node case: a manager and a worker, each dockerd in a network namespace of the
test's own, joined over a veth pair with addresses private to those namespaces. It needs root and `ip netns`,
and takes longer: opt in with OPSCHECK_TWO_NODE_SWARM=1 (scripts/test.sh does when the machine allows it).

The shared engine at /var/run/docker.sock is never touched.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import unavailable
from realservices import BUSYBOX_TAG, ServiceUnavailable, _unix_ping, ensure_busybox_image, wait_for

# Debian's CLI (20.10), which the stack files are written for (`version: "3.8"`); any docker CLI otherwise.
CLI = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")
HOST_NETWORK = """
networks:
  hostnet:
    external: true
    name: host
"""


def _port_free(address: str, port: int, kind: int = socket.SOCK_STREAM) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def _free_udp_port() -> int:
    """A UDP port free on every address, in the range Swarm takes for its data path (1024-49151)."""
    for _ in range(50):
        port = random.randint(20000, 49151)
        if _port_free("0.0.0.0", port, socket.SOCK_DGRAM):
            return port
    raise ServiceUnavailable("no free UDP port for the swarm's data path")


@dataclass
class SwarmEngine:
    """A dockerd of the tests' own under `root` (its socket, data, exec root, pidfile), in `netns` if given."""

    root: Path
    netns: str | None = None
    hostname: str | None = None
    process: subprocess.Popen[bytes] | None = None
    stacks: list[str] = field(default_factory=list)
    started_in: float = 0.0

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 60) -> None:
        """Start dockerd (in the network namespace, with its own hostname, when asked) and wait for its API."""
        began = time.monotonic()
        for folder in ("data", "exec", "stacks", "cli"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        command = [shutil.which("dockerd") or "dockerd", "--storage-driver=vfs", "--iptables=false",
                   "--ip6tables=false", "--bridge=none", f"--data-root={self.root / 'data'}",
                   f"--exec-root={self.root / 'exec'}", f"--pidfile={self.root / 'dockerd.pid'}", "-H", self.host]
        if self.hostname:  # `unshare` without --fork execs: the pid started here is dockerd's
            command = ["unshare", "--uts", "sh", "-c", f'hostname {self.hostname} && exec "$@"', "sh", *command]
        if self.netns:  # only the network namespace: `ip netns exec` would hide the cgroup mounts dockerd needs
            command = ["nsenter", f"--net=/run/netns/{self.netns}", *command]
        with (self.root / "dockerd.log").open("wb") as log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        try:
            wait_for(lambda: self.process is not None and self.process.poll() is None
                     and _unix_ping(self.socket, 2.0), timeout, f"dockerd under {self.root}")
        except ServiceUnavailable:
            tail = (self.root / "dockerd.log").read_text(errors="replace")[-1200:]
            self.stop()
            raise ServiceUnavailable(f"dockerd under {self.root} did not start; its log ends with:\n{tail}") from None
        self.started_in = time.monotonic() - began

    def cli(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The docker CLI on this engine; `RuntimeError` with its stderr when `check` and it fails."""
        env = {**os.environ, "DOCKER_HOST": self.host, "DOCKER_CONFIG": str(self.root / "cli")}
        result = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout, env=env)
        if check and result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed: {result.stderr.strip()[-1500:]}")
        return result

    def client(self, timeout: int = 30) -> Any:
        import docker

        return docker.DockerClient(base_url=self.host, timeout=timeout)

    def init(self, address: str, port: int = 2377, data_path_port: int | None = None) -> None:
        """`docker swarm init` advertising and listening on `address:port`, after creating `docker_gwbridge` with
        a bridge name of this engine's own (two engines in one namespace would otherwise share `docker_gwbridge`)."""
        tag = uuid.uuid4().hex[:6]
        self.cli("network", "create", "--driver", "bridge", "--subnet", f"10.{random.randint(200, 250)}."
                 f"{random.randint(0, 255)}.0/24", "-o", f"com.docker.network.bridge.name=osgw{tag}",
                 "-o", "com.docker.network.bridge.enable_icc=false", "docker_gwbridge")
        extra = ["--data-path-port", str(data_path_port)] if data_path_port else []
        self.cli("swarm", "init", "--advertise-addr", address, "--listen-addr", f"{address}:{port}", *extra)

    def import_busybox(self) -> str:
        client = self.client()
        try:
            return ensure_busybox_image(client)
        finally:
            client.close()

    def deploy(self, name: str, stack_yaml: str) -> str:
        """`docker stack deploy` of the stack file text (`${BUSYBOX}` is the busybox image); the stack's name."""
        path = self.root / "stacks" / f"{name}.yml"
        path.write_text(stack_yaml.replace("${BUSYBOX}", BUSYBOX_TAG) + HOST_NETWORK)
        self.stacks.append(name)
        self.cli("stack", "deploy", "-c", str(path), name)
        return name

    def tasks(self, stack: str) -> list[dict[str, Any]]:
        client = self.client()
        try:
            return list(client.api.tasks(filters={"label": f"com.docker.stack.namespace={stack}"}))
        finally:
            client.close()

    def stop(self) -> None:
        """Remove the stacks, `docker_gwbridge`, then stop dockerd (SIGTERM to its pid, then SIGKILL), unmount
        what it left mounted and remove its folder."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(Exception):
                if self.stacks:
                    self.cli("stack", "rm", *self.stacks, check=False)
                self.cli("swarm", "leave", "--force", check=False, timeout=30)
                self.cli("network", "rm", "docker_gwbridge", check=False)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None
        # What a dockerd that did not shut down cleanly leaves mounted: its network namespaces, its data root.
        mounts = sorted((self.root / "exec" / "netns").glob("*")) if (self.root / "exec").exists() else []
        for mount in [*mounts, self.root / "data"]:
            if os.path.ismount(mount):
                subprocess.run(["umount", str(mount)], capture_output=True, timeout=15)
        shutil.rmtree(self.root, ignore_errors=True)


def wait_until(predicate: Callable[[], object], seconds: float, what: str) -> None:
    """Poll `predicate` until true; fail the test saying what did not happen."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    pytest.fail(f"{what} did not happen within {seconds:g} s")


def _needs_root_and_dockerd() -> None:
    if os.geteuid() != 0:
        unavailable("a swarm of the tests' own needs root (to start dockerd)")
    for tool in ("dockerd", "containerd", "runc"):
        if shutil.which(tool) is None:
            unavailable(f"no `{tool}` to start a swarm's engine: apt-get install docker.io")
    if not Path(CLI).exists() and shutil.which(CLI) is None:
        unavailable("no docker CLI for `docker stack deploy`: apt-get install docker.io")


def _loopback_address() -> tuple[str, int]:
    """127.0.0.1:2377 as the issue says; when another swarm holds 2377 or 7946 there, another loopback address."""
    for address in ("127.0.0.1", *(f"127.0.{random.randint(1, 254)}.{random.randint(1, 254)}" for _ in range(5))):
        if _port_free(address, 2377) and _port_free(address, 7946) and _port_free(address, 7946, socket.SOCK_DGRAM):
            return address, 2377
    raise ServiceUnavailable("no loopback address with TCP 2377 and 7946 free for a swarm")


_SHARED: list[SwarmEngine] = []  # the one engine of the session, whichever test module asks for it first


@pytest.fixture(scope="session")
def swarm() -> Iterator[SwarmEngine]:
    """A one-node swarm of the tests' own (manager on 127.0.0.1), with the busybox image; one per session.

    Each test module that imports this fixture gets a session fixture of its own: the first one starts the engine
    and stops it at the end of the session, the others use it.
    """
    if _SHARED:
        yield _SHARED[0]
        return
    _needs_root_and_dockerd()
    engine = SwarmEngine(Path(tempfile.mkdtemp(prefix="opscheck-swarm-", dir="/tmp")))
    try:
        engine.start()
        address, port = _loopback_address()
        engine.init(address, port, None if _port_free("0.0.0.0", 4789, socket.SOCK_DGRAM) else _free_udp_port())
        engine.import_busybox()
    except (ServiceUnavailable, RuntimeError, OSError) as exc:
        engine.stop()
        unavailable(f"cannot start a swarm of the tests' own: {exc}")
    _SHARED.append(engine)
    try:
        yield engine
    finally:
        _SHARED.clear()
        engine.stop()


@dataclass
class TwoNodes:
    """A manager and a worker, each in a network namespace of the test's own, joined over a veth pair."""

    manager: SwarmEngine
    worker: SwarmEngine
    namespaces: tuple[str, str]
    links: tuple[str, str]
    addresses: tuple[str, str]

    def lose_worker(self) -> None:
        """The worker's end of the veth pair down: the manager stops hearing its heartbeat."""
        self._link("down")

    def _link(self, state: str) -> None:
        subprocess.run(["ip", "-n", self.namespaces[1], "link", "set", self.links[1], state], check=True, timeout=15)


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15)
    if result.returncode != 0:
        raise ServiceUnavailable(f"ip {' '.join(args)}: {result.stderr.strip()}")


@pytest.fixture(scope="module")
def two_node_swarm() -> Iterator[TwoNodes]:
    """Opt-in (OPSCHECK_TWO_NODE_SWARM=1): a two-node swarm whose nodes talk over 10.231.N.1-2/30 only."""
    if not os.environ.get("OPSCHECK_TWO_NODE_SWARM"):
        pytest.skip("opt-in: the two-node swarm needs root and network namespaces and takes ~25 s; "
                    "set OPSCHECK_TWO_NODE_SWARM=1 (scripts/test.sh does when the machine allows it)")
    _needs_root_and_dockerd()
    for tool in ("ip", "nsenter", "unshare"):
        if shutil.which(tool) is None:
            unavailable(f"no `{tool}` for the two-node swarm: apt-get install iproute2 util-linux")
    tag = uuid.uuid4().hex[:6]
    namespaces, links = (f"osm{tag}", f"osw{tag}"), (f"osm{tag}", f"osw{tag}")
    subnet = random.randint(0, 63) * 4
    addresses = (f"10.231.{random.randint(0, 255)}.{subnet + 1}", "")
    addresses = (addresses[0], addresses[0].rsplit(".", 1)[0] + f".{subnet + 2}")
    engines: list[SwarmEngine] = []
    made: list[str] = []
    try:
        for ns in namespaces:
            _ip("netns", "add", ns)
            made.append(ns)
        _ip("link", "add", links[0], "type", "veth", "peer", "name", links[1])
        for ns, link, address in zip(namespaces, links, addresses, strict=True):
            _ip("link", "set", link, "netns", ns)
            _ip("-n", ns, "addr", "add", f"{address}/30", "dev", link)
            _ip("-n", ns, "link", "set", link, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        for ns, name in zip(namespaces, ("swarm-manager", "swarm-worker"), strict=True):
            engine = SwarmEngine(Path(tempfile.mkdtemp(prefix=f"opscheck-{name}-", dir="/tmp")), ns, name)
            engines.append(engine)
            engine.start()
        manager, worker = engines
        manager.init(addresses[0])
        token = manager.cli("swarm", "join-token", "-q", "worker").stdout.strip()
        worker.cli("swarm", "join", "--token", token, "--advertise-addr", addresses[1], "--listen-addr",
                   f"{addresses[1]}:2377", f"{addresses[0]}:2377")
        for engine in engines:
            engine.import_busybox()
    except (ServiceUnavailable, RuntimeError, OSError) as exc:
        for engine in reversed(engines):
            engine.stop()
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=15)
        unavailable(f"cannot make the two-node swarm: {exc}")
    nodes = TwoNodes(manager, worker, namespaces, links, addresses)
    try:
        yield nodes
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            nodes._link("up")  # a lost worker back: both leave the swarm at once
        for engine in (worker, manager):
            engine.stop()
        for ns in namespaces:  # deleting a namespace deletes its end of the veth pair, and so the pair
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=15)
