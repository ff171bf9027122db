"""What the demo starts and stops: a throwaway PostgreSQL cluster, its child processes, free loopback ports.

Everything here binds to 127.0.0.1 only, and stops only what it started, by pid.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
HOST = "127.0.0.1"


class DemoError(Exception):
    """The demo cannot set itself up here; the message says why and what to do."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False


def wait_until(predicate: Callable[[], bool], seconds: float, what: str, log: Path | None = None) -> None:
    """Poll `predicate` until true; on time-out, a DemoError with the tail of `log`."""
    deadline = time.monotonic() + seconds
    delay = 0.05
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.3)
    tail = ""
    if log is not None and log.exists():
        tail = "\n  " + "\n  ".join(log.read_text(errors="replace").splitlines()[-15:])
    raise DemoError(f"{what} not ready after {seconds:g} s{tail}")


def pg_bin() -> Path:
    """PostgreSQL's server programs: Debian's 15, else the newest installed."""
    if (PG_BIN / "initdb").exists():
        return PG_BIN
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise DemoError("no PostgreSQL server: apt-get install postgresql postgresql-contrib "
                        "(or run: bash scripts/demo.sh, which does)")
    return found[-1].parent


@dataclass
class Child:
    """A process the demo started in its own session; `stop()` ends that process group, by its id."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def spawn(name: str, command: list[str], env: dict[str, str], logs: Path) -> Child:
    """Start `command` from the repository's root in a new session, its output to logs/NAME.log."""
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return Child(name, process, log)


@dataclass
class Cluster:
    """A throwaway PostgreSQL cluster in a temporary folder, owned by the `postgres` user."""

    base: Path
    port: int
    superuser_password: str
    bin: Path = field(default_factory=pg_bin)
    running: bool = False

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres:{self.superuser_password}@{HOST}:{self.port}/postgres"

    def server_command(self) -> list[str]:
        """The server in the foreground: loopback only, pg_stat_statements preloaded."""
        return [
            str(self.bin / "postgres"), "-D", str(self.datadir),
            "-c", f"listen_addresses={HOST}", "-c", f"port={self.port}",
            "-c", f"unix_socket_directories={self.base}",
            "-c", "shared_preload_libraries=pg_stat_statements",
            "-c", "fsync=off", "-c", "max_connections=40",
        ]

    def start(self) -> None:
        """Start the server as the postgres user with pg_ctl (local-processes mode)."""
        options = " ".join(self.server_command()[3:])
        self.running = True  # from here on, stop() must try: an interrupt may come while pg_ctl waits
        result = subprocess.run(
            [*as_postgres(), str(self.bin / "pg_ctl"), "-D", str(self.datadir), "-o", options,
             "-l", str(self.base / "server.log"), "-w", "-t", "60", "start"],
            capture_output=True, text=True, timeout=90,
        )
        if result.returncode != 0:
            server_log = self.base / "server.log"
            log = server_log.read_text(errors="replace")[-1500:] if server_log.exists() else ""
            raise DemoError(f"PostgreSQL did not start: {result.stderr.strip()[-800:]}\n{log}")

    def stop(self) -> None:
        """Stop the server pg_ctl started (the postmaster's pid is in its datadir); a no-op when not running."""
        if not self.running:
            return
        subprocess.run([*as_postgres(), str(self.bin / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w",
                        "-t", "30", "stop"], capture_output=True, timeout=60)
        self.running = False

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def as_postgres() -> list[str]:
    """The prefix that runs a command as the postgres user (the server refuses to run as root)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        raise DemoError("running PostgreSQL as root needs runuser (util-linux)")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise DemoError("no postgres user: apt-get install postgresql") from None
    return ["runuser", "-u", "postgres", "--"]


def init_cluster(base: Path, password: str) -> Cluster:
    """initdb a new cluster under `base` (a fresh temporary folder) on a free loopback port."""
    import tempfile

    bin_dir = pg_bin()
    prefix = as_postgres()
    base.chmod(0o755)
    pwfile = Path(tempfile.mkstemp(prefix="pw-", dir=base)[1])
    pwfile.write_text(password)
    if prefix:
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    try:
        result = subprocess.run(
            [*prefix, str(bin_dir / "initdb"), "-D", str(base / "data"), "-U", "postgres", "--pwfile", str(pwfile),
             "-A", "scram-sha-256", "--no-locale", "-E", "UTF8", "--no-sync"],
            capture_output=True, text=True, timeout=120,
        )
    finally:
        pwfile.unlink()
    if result.returncode != 0:
        raise DemoError(f"initdb failed: {result.stderr.strip()[-800:]}")
    return Cluster(base=base, port=free_port(), superuser_password=password, bin=bin_dir)


def create_app_database(cluster: Cluster, password: str) -> str:
    """The `demo` role and database (with pg_stat_statements); the role's URL."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(cluster.admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE ROLE demo LOGIN PASSWORD {}").format(sql.Literal(password)))
        conn.execute("CREATE DATABASE demo OWNER demo")
    with psycopg.connect(cluster.admin_url.rsplit("/", 1)[0] + "/demo", autocommit=True, connect_timeout=5) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("GRANT pg_read_all_stats TO demo")
    return f"postgresql://demo:{password}@{HOST}:{cluster.port}/demo"


def migrate(database_url: str, revision: str, logs: Path) -> None:
    """Apply the demo's Alembic migrations up to `revision`, with the alembic command itself."""
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(DEMO / "backend" / "alembic.ini"), "upgrade", revision],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "alembic.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise DemoError(f"alembic upgrade {revision} failed: {result.stderr.strip()[-1200:]}")
