"""See pytest-opscheck work: start a bundled demo target with one fault, sweep it, stop everything.

    python demo/run.py [--fault NAME] [--mode auto|compose|local] [--out DIR]
    (or OPSCHECK_DEMO_FAULT=NAME python demo/run.py)

The target: a Starlette backend under uvicorn (JSON login with HS256 tokens, /api/me, /api/items from
PostgreSQL, /health, /metrics, a WebSocket at /realtime), its PostgreSQL database (a throwaway cluster)
migrated with Alembic, a single-page frontend, and an SMTP server, all on 127.0.0.1 only.
It runs as a Compose stack when a Docker engine answers (the images are made here from busybox-static,
with the host's Python bind-mounted read-only: no registry is needed), else as local processes.

Faults: none, db-down, crash-loop, broken-login, missing-migration, ws-refused, deeplinks-404.
The exit status is the sweep's (pytest's): 0 when every check passes, 1 when the fault makes one fail,
2 when interrupted, 3 when the demo could not set itself up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: import the demo as the package it is, not its modules as top-level ones.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from demo import provision
from demo.provision import DEMO, HOST, DemoError

FAULTS = ("none", "db-down", "crash-loop", "broken-login", "missing-migration", "ws-refused", "deeplinks-404")
FIRST_REVISION = "0001_items"
USER = "smoke@example.test"
EXIT_SETUP_FAILED = 3
EXIT_INTERRUPTED = 2


@dataclass
class Demo:
    """One run of the demo: its fault, its folder, its secrets, its ports, and what it has to stop."""

    fault: str
    workdir: Path
    secrets: dict[str, str]
    ports: dict[str, int]
    stops: list[tuple[str, Callable[[], object]]] = field(default_factory=list)
    cluster: provision.Cluster | None = None
    database_url: str = ""
    compose_project: str | None = None
    stop_database: Callable[[], object] | None = None

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    def on_stop(self, what: str, callback: Callable[[], object]) -> None:
        self.stops.append((what, callback))

    def stop_all(self) -> None:
        """Stop everything started, last started first; one failure does not keep the rest running."""
        while self.stops:
            what, callback = self.stops.pop()
            try:
                callback()
            except Exception as exc:  # noqa: BLE001 - report and go on stopping the rest
                print(f"demo: stopping {what} failed: {exc}", file=sys.stderr)

    def app_env(self) -> dict[str, str]:
        """What the backend, frontend and SMTP server are configured by (secrets included)."""
        return {
            "DEMO_FAULT": self.fault,
            "DATABASE_URL": self.database_url,
            "JWT_SECRET": self.secrets["JWT_SECRET"],
            "DEMO_USER": self.secrets["DEMO_USER"],
            "DEMO_PASSWORD": self.secrets["DEMO_PASSWORD"],
            "DEMO_FRONTEND_ORIGIN": f"http://{HOST}:{self.ports['frontend']}",
        }


def new_demo(fault: str, workdir: Path) -> Demo:
    names = ("backend", "frontend", "smtp")
    ports: dict[str, int] = {}
    while len(set(ports.values())) < len(names):
        ports = {name: provision.free_port() for name in names}
    return Demo(
        fault=fault,
        workdir=workdir,
        secrets={
            "DEMO_USER": USER,
            "DEMO_PASSWORD": secrets.token_urlsafe(18),
            "DEMO_DB_PASSWORD": secrets.token_urlsafe(18),
            "JWT_SECRET": secrets.token_hex(32),
            "PG_SUPERUSER_PASSWORD": secrets.token_urlsafe(18),
        },
        ports=ports,
    )


def uvicorn(app: str, port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port), "--log-level", "warning",
            "--no-access-log"]


def commands(demo: Demo) -> dict[str, list[str]]:
    return {
        "backend": uvicorn("demo.backend.app:app", demo.ports["backend"]),
        "frontend": uvicorn("demo.frontend.app:app", demo.ports["frontend"]),
        "smtp": [sys.executable, "-m", "demo.mailserver", str(demo.ports["smtp"])],
    }


def prepare_database(demo: Demo) -> None:
    """A fresh cluster's `demo` database, migrated with Alembic (only the first revision for missing-migration)."""
    assert demo.cluster is not None
    demo.database_url = provision.create_app_database(demo.cluster, demo.secrets["DEMO_DB_PASSWORD"])
    revision = FIRST_REVISION if demo.fault == "missing-migration" else "head"
    provision.migrate(demo.database_url, revision, demo.logs)


def new_cluster(demo: Demo) -> provision.Cluster:
    base = Path(tempfile.mkdtemp(prefix="opscheck-demo-pg-"))
    demo.on_stop("the database's temporary folder", lambda: provision.Cluster(base, 0, "").remove())
    cluster = provision.init_cluster(base, demo.secrets["PG_SUPERUSER_PASSWORD"])
    demo.cluster = cluster
    return cluster


# --- local processes --------------------------------------------------------------------------------------------


def has_output(child: provision.Child) -> bool:
    return child.log.stat().st_size > 0


def listening_or_exited(child: provision.Child, port: int) -> bool:
    return provision.listening(port) or not child.alive()


def start_local(demo: Demo) -> None:
    cluster = new_cluster(demo)
    demo.on_stop("PostgreSQL", cluster.stop)
    cluster.start()
    prepare_database(demo)
    env = {**os.environ, **demo.app_env()}
    children = {}
    for name, command in commands(demo).items():
        if name == "backend" and demo.fault == "crash-loop":
            # As a supervisor with restart: always would: start it again whenever it exits.
            command = ["bash", "-c", 'while :; do "$@"; sleep 1; done', "restart-always", *command]
        child = provision.spawn(name, command, env, demo.logs)
        demo.on_stop(f"the {name} (pid {child.process.pid})", child.stop)
        children[name] = child
    for name, child in children.items():
        if name == "backend" and demo.fault == "crash-loop":
            provision.wait_until(partial(has_output, child), 30, "the crashing backend", child.log)
            continue
        port = demo.ports[name]
        provision.wait_until(partial(listening_or_exited, child, port), 30, f"the {name} on {HOST}:{port}", child.log)
        if not child.alive():
            tail = "\n  ".join(child.log.read_text(errors="replace").splitlines()[-15:])
            raise DemoError(f"the {name} exited at start:\n  {tail}")

    def stop_database() -> None:
        assert demo.cluster is not None
        demo.cluster.stop()

    demo.stop_database = stop_database


# --- Compose stack ------------------------------------------------------------------------------------------------


def start_compose(demo: Demo) -> None:
    from demo import compose

    cluster = new_cluster(demo)
    project = compose.Project(name=f"opscheck-demo-{secrets.token_hex(3)}", folder=demo.workdir / "compose")
    demo.on_stop(f"the Compose project {project.name} (docker compose down)", project.down)
    project.write(compose.stack_yaml(project.name, demo.fault, cluster, commands(demo), demo.ports))
    # The database first: the backend's DATABASE_URL needs the `demo` role made in it.
    project.up(["db"], {**os.environ, **demo.app_env()}, demo.logs)
    project.wait_ready({"db": "healthy"})
    prepare_database(demo)
    project.up(["backend", "frontend", "smtp"], {**os.environ, **demo.app_env()}, demo.logs)
    backend = "restarting" if demo.fault == "crash-loop" else "healthy"
    project.wait_ready({"backend": backend, "frontend": "healthy", "smtp": "running"})
    for name in ("frontend", "smtp") if demo.fault == "crash-loop" else ("backend", "frontend", "smtp"):
        provision.wait_until(partial(provision.listening, demo.ports[name]), 30, f"the {name} on {HOST}")
    demo.compose_project = project.name
    demo.stop_database = lambda: project.stop("db")


# --- the sweep ----------------------------------------------------------------------------------------------------


def config_text(demo: Demo) -> str:
    assert demo.cluster is not None
    backend = f"http://{HOST}:{demo.ports['backend']}"
    lines = [
        "# Written by demo/run.py: pytest-opscheck's configuration for the demo target.",
        "# The secrets come from the environment of the sweep (DEMO_USER, DEMO_PASSWORD, DEMO_DB_PASSWORD).",
    ]
    if demo.compose_project:
        lines += [
            f'compose_project = "{demo.compose_project}"',
            'required_env = { backend = ["JWT_SECRET", "DATABASE_URL"] }',
            f'stack_db_address = "{HOST}:{demo.cluster.port}"',
        ]
    lines += [
        f'backend_url = "{backend}"',
        'health_path = "/health"',
        'metrics_path = "/metrics"',
        f'frontend_url = "http://{HOST}:{demo.ports["frontend"]}"',
        'frontend_routes = ["/", "/login", "/settings"]',
        'api_paths = ["/api/items"]',
        f'database_url = "postgresql://demo:${{DEMO_DB_PASSWORD}}@{HOST}:{demo.cluster.port}/demo"',
        f"migrations = {{ tool = \"alembic\", script_location = {json.dumps(str(DEMO / 'backend' / 'alembic'))} }}",
        f'websocket_url = "ws://{HOST}:{demo.ports["backend"]}/realtime"',
        'auth = { login_path = "/api/auth/login", style = "json", username = "${DEMO_USER}", '
        'password = "${DEMO_PASSWORD}", probe_path = "/api/me" }',
        f'smtp = {{ host = "{HOST}", port = {demo.ports["smtp"]}, sender = "demo@example.test" }}',
        "timeout = 3",
    ]
    return "\n".join(lines) + "\n"


def sweep(demo: Demo) -> tuple[int, Path, Path]:
    """`python -m pytest --opscheck` in the demo's folder, the secrets in its environment only."""
    config = demo.workdir / "opscheck.toml"
    config.write_text(config_text(demo))
    report, records = demo.workdir / "opscheck-report.html", demo.workdir / "opscheck.json"
    for stale in (report, records):
        stale.unlink(missing_ok=True)
    env = {**os.environ, **{k: v for k, v in demo.secrets.items() if k.startswith("DEMO_")}}
    for name in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_CURRENT_TEST"):
        env.pop(name, None)
    # An empty pytest.ini pins the sweep's configuration here: no pytest settings of a folder above apply.
    (demo.workdir / "pytest.ini").write_text("# Written by demo/run.py: the sweep uses pytest's defaults.\n[pytest]\n")
    options = ["--opscheck", "--opscheck-config", config.name, "--opscheck-json", records.name,
               "-p", "no:cacheprovider"]
    print(f"$ cd {demo.workdir} && python -m pytest {' '.join(options)}", flush=True)
    command = [sys.executable, "-m", "pytest", *options]
    result = subprocess.run(command, cwd=demo.workdir, env=env)
    return result.returncode, report, records


def verdict_of(records: Path) -> str:
    try:
        return str(json.loads(records.read_text())["verdict"])
    except (OSError, ValueError, KeyError):
        return "no verdict: the sweep did not finish"


def compose_unavailable() -> str | None:
    """Why a Compose stack cannot be started here, else None."""
    from demo import compose

    return compose.unavailable()


def run(demo: Demo, mode: str) -> int:
    from demo import bootstrap

    started = time.monotonic()
    bootstrap.ensure_installed()
    reason = compose_unavailable() if mode != "local" else "--mode local"
    if reason is None:
        print("a Docker engine answers: starting the target as a Compose stack …", flush=True)
        try:
            start_compose(demo)
            print(f"mode: Compose stack (project {demo.compose_project}: its image made here from busybox-static, "
                  f"the host's Python bind-mounted read-only, network_mode host, {HOST} only)", flush=True)
        except DemoError as exc:
            if mode == "compose":
                raise
            reason = f"the Compose stack did not start: {str(exc).splitlines()[0]}"
            print(f"demo: {reason}; stopping it and falling back", flush=True)
            demo.stop_all()
    elif mode == "compose":
        raise DemoError(f"--mode compose: {reason}")
    if reason is not None:
        print(f"mode: local processes on {HOST} ({reason})", flush=True)
        start_local(demo)
    if demo.fault == "db-down" and demo.stop_database is not None:
        demo.stop_database()
        print("fault db-down: the database is stopped", flush=True)
    print(f"set-up took {time.monotonic() - started:.1f} s; sweeping with fault {demo.fault} …", flush=True)
    status, report, records = sweep(demo)
    print(f"\nverdict: {verdict_of(records)}")
    print(f"HTML report: {report}" if report.exists() else "HTML report: none was written")
    print(f"config, JSON results and the target's logs: {demo.workdir}")
    return status


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_fault = os.environ.get("OPSCHECK_DEMO_FAULT") or "broken-login"
    parser.add_argument("--fault", default=default_fault, choices=FAULTS,
                        help="the fault to switch on (default: $OPSCHECK_DEMO_FAULT, else broken-login)")
    parser.add_argument("--mode", default="auto", choices=("auto", "compose", "local"),
                        help="Compose stack or local processes (default auto: Compose when a Docker engine answers)")
    parser.add_argument("--out", type=Path, help="the folder for the config, reports and logs (default: a new "
                        "temporary folder, kept)")
    args = parser.parse_args(argv)
    if args.fault not in FAULTS:  # argparse checks the choices of a given value, not of the default
        parser.error(f"OPSCHECK_DEMO_FAULT={args.fault}: expected one of {', '.join(FAULTS)}")
    workdir = args.out.resolve() if args.out else Path(tempfile.mkdtemp(prefix="opscheck-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    demo = new_demo(args.fault, workdir)
    started = time.monotonic()
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"pytest-opscheck demo: fault {args.fault}", flush=True)
    status = EXIT_SETUP_FAILED
    try:
        status = run(demo, args.mode)
    except KeyboardInterrupt:
        print("\ndemo: interrupted", flush=True)
        status = EXIT_INTERRUPTED
    except DemoError as exc:
        print(f"demo: cannot set up the demo target: {exc}", file=sys.stderr, flush=True)
        print(f"logs: {demo.logs}", file=sys.stderr)
    finally:
        # Stopping must finish even on a second Ctrl-C.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        demo.stop_all()
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGINT, signal.default_int_handler)
    print(f"demo took {time.monotonic() - started:.1f} s; everything it started is stopped", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
