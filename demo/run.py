"""Run pytest-opscheck against a bundled demo target with one fault switched on, then stop everything.

    python demo/run.py [--fault NAME]      (or OPSCHECK_DEMO_FAULT=NAME)

Faults: none, db-down, crash-loop, broken-login, missing-migration, ws-refused, deeplinks-404.
The exit status is the sweep's: 0 when no check fails, 1 when the fault makes one fail.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import realservices  # noqa: E402 - the project's provisioning of a throwaway PostgreSQL

FAULTS = ("none", "db-down", "crash-loop", "broken-login", "missing-migration", "ws-refused", "deeplinks-404")
USER = "demo@example.test"


def wait_listening(port: int, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise SystemExit(f"demo: {what} did not start listening on 127.0.0.1:{port} within {seconds:g} s")


@contextlib.contextmanager
def process(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A child process of the demo, ended by its pid when the demo stops."""
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def database(admin_url: str, password: str) -> str:
    """A `demo` role and database on the throwaway server; the role's URL (password from the environment)."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE ROLE demo LOGIN PASSWORD '{password}'")
        conn.execute("CREATE DATABASE demo OWNER demo")
    port = admin_url.rsplit(":", 1)[1].split("/")[0]
    return f"postgresql://demo:{password}@127.0.0.1:{port}/demo"


def migrate(url: str, target: str) -> None:
    """Apply the demo's Alembic migrations up to `target`, with Alembic itself."""
    from alembic import command
    from alembic.config import Config

    os.environ["DEMO_DATABASE_URL"] = url
    config = Config()
    config.set_main_option("script_location", str(ROOT / "demo" / "migrations"))
    command.upgrade(config, target)


def config_text(ports: dict[str, int], smtp_port: int, db_port: int) -> str:
    return f"""\
backend_url = "http://127.0.0.1:{ports['backend']}"
health_path = "/health"
metrics_path = "/metrics"
health_memory_path = "checks.memory"
frontend_url = "http://127.0.0.1:{ports['frontend']}"
frontend_routes = ["/", "/login", "/settings"]
api_paths = ["/api/items"]
websocket_url = "ws://127.0.0.1:{ports['backend']}/realtime"
database_url = "postgresql://demo:${{DEMO_DB_PASSWORD}}@127.0.0.1:{db_port}/demo"
migrations = {{ tool = "alembic", script_location = "{ROOT / 'demo' / 'migrations'}" }}
smtp = {{ host = "127.0.0.1", port = {smtp_port}, sender = "demo@example.test" }}
timeout = 3

[auth]
login_path = "/api/auth/login"
style = "json"
username = "{USER}"
password = "${{DEMO_PASSWORD}}"
probe_path = "/api/me"
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fault", choices=FAULTS, default=os.environ.get("OPSCHECK_DEMO_FAULT", "broken-login"))
    parser.add_argument("--out", type=Path, default=Path.cwd() / "opscheck-demo", help="where the reports go")
    args = parser.parse_args()
    started = time.monotonic()
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    print("mode: local processes on 127.0.0.1 (the demo builds no container images: no registry is needed)")
    print(f"fault: {args.fault}")
    secret = {"DEMO_SECRET": secrets.token_hex(32), "DEMO_PASSWORD": secrets.token_urlsafe(16),
              "DEMO_DB_PASSWORD": secrets.token_urlsafe(16), "DEMO_USER": USER}
    postgres = realservices.start_postgres()
    with contextlib.ExitStack() as stack:
        stack.callback(postgres.stop)
        url = database(postgres.url, secret["DEMO_DB_PASSWORD"])
        migrate(url, "0001_items" if args.fault == "missing-migration" else "head")
        ports = {"backend": realservices.free_port(), "frontend": realservices.free_port()}
        env = {**os.environ, **secret, "DEMO_DATABASE_URL": url, "DEMO_FAULT": args.fault,
               "DEMO_FRONTEND_ORIGIN": f"http://127.0.0.1:{ports['frontend']}"}
        uvicorn = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--log-level", "warning"]
        if args.fault == "crash-loop":
            crash = f"{sys.executable} -c 'raise SystemExit(\"backend: boot failure\")'"
            stack.enter_context(process(["bash", "-c", f"while true; do {crash}; sleep 0.2; done"], env))
        else:
            stack.enter_context(process([*uvicorn, "--port", str(ports["backend"]), "demo.backend:app"], env))
            wait_listening(ports["backend"], 30, "the backend")
        stack.enter_context(process([*uvicorn, "--port", str(ports["frontend"]), "demo.frontend:app"], env))
        wait_listening(ports["frontend"], 30, "the frontend")
        from aiosmtpd.controller import Controller

        smtp = Controller(object(), hostname="127.0.0.1", port=realservices.free_port())
        smtp.start()
        stack.callback(smtp.stop)
        if args.fault == "db-down":
            postgres.stop()
        (out / "opscheck.toml").write_text(config_text(ports, smtp.port, postgres.port))
        report, data = out / "opscheck-report.html", out / "opscheck.json"
        print(f"set-up took {time.monotonic() - started:.1f} s; sweeping…", flush=True)
        sweep = subprocess.run(
            [sys.executable, "-m", "pytest", "--opscheck", "--opscheck-config", str(out / "opscheck.toml"),
             "--rootdir", str(out), "-p", "no:cacheprovider", "-q", "--html", str(report),
             "--opscheck-json", str(data)],
            cwd=out, env=env,
        )
    verdict = json.loads(data.read_text())["verdict"] if data.exists() else "no verdict (the sweep did not finish)"
    print(f"\nverdict: {verdict}")
    print(f"HTML report: {report}")
    print(f"demo took {time.monotonic() - started:.1f} s; everything it started is stopped")
    return sweep.returncode


if __name__ == "__main__":
    sys.exit(main())
