"""What the fingerprint of `--opscheck-state` adds to a sweep: `History.update` (gather the fingerprint from the
opened targets, lock, read, compare, write the state atomically) on a real Compose project of 1, 10 and 30
busybox services with 20 environment variables each, and on a real PostgreSQL's migration head; with the state
file's size. The targets are opened once per size, as a sweep opens them (not counted: the sweep pays for them
anyway); each update is timed alone, 20 times.

Run: python bench/changes.py   (needs root or a Docker engine, as the tests do; PostgreSQL optional)
Then a whole sweep of the stack checks on the 10-service project, as a process, with and without a state file.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from realservices import (
    ComposeProject,
    ServiceUnavailable,
    ensure_busybox_image,
    ensure_compose_plugin,
    ensure_docker_engine,
    start_postgres,
)

from pytest_opscheck import targets as targets_module
from pytest_opscheck.changes import History
from pytest_opscheck.config import settings_from_table
from pytest_opscheck.model import CheckRecord, summarize

SIZES = (1, 10, 30)
ROUNDS = 20
ENV_PER_SERVICE = 20
WHOLE = 10  # the size whose whole sweep is timed with and without a state file
SWEEPS = 5


def stack_yaml(image: str, count: int) -> str:
    env = "".join(f"      VAR_{n:02d}: value-{n}-{uuid.uuid4().hex}\n" for n in range(ENV_PER_SERVICE))
    return "services:\n" + "".join(
        f"  svc{i:02d}:\n    image: {image}\n    network_mode: none\n    command: sleep 3600\n"
        f"    stop_signal: SIGKILL\n    environment:\n{env}" for i in range(count))


def open_targets(settings: Any) -> Any:
    builtin = getattr(targets_module, "BUILTIN", None)
    targets = targets_module.Targets(settings, builtin) if builtin is not None else targets_module.Targets(settings)
    targets.prefetch()
    return targets


def measure(label: str, table: dict[str, Any], folder: Path) -> None:
    settings = settings_from_table(table, folder / "opscheck.toml")
    targets = open_targets(settings)
    try:
        for name in ("stack", "db"):
            targets.opened(name)  # opened before the clock, as they are at a sweep's end
        state = folder / f"state-{uuid.uuid4().hex[:6]}.json"
        history = History(state, settings)
        records = [CheckRecord("stack.services_running", "x::s", "P1", "passed", 0.1, "", "")]
        gather, total = [], []
        for n in range(ROUNDS):
            outcome = "failed" if n % 2 else "passed"  # a failing sweep also compares and rewrites resolutions
            records = [CheckRecord("stack.services_running", "x::s", "P1", outcome, 0.1, "", "", service="svc00")]
            began = time.perf_counter()
            history.update(summarize(records), targets)
            total.append(time.perf_counter() - began)
            gather.append(history.timings["gather"])
        size = state.stat().st_size
    finally:
        targets.close()
    print(f"{label:<40} update median {statistics.median(total) * 1000:6.1f} ms  max {max(total) * 1000:6.1f} ms  "
          f"(fingerprint {statistics.median(gather) * 1000:6.1f} ms)  state file {size / 1024:6.1f} KiB")


def whole_sweeps(folder: Path, project: str) -> None:
    """`pytest --opscheck -k "stack. or host."` on the project, as a process, with no state (the cache plugin off,
    no --opscheck-state) and with one: the wall time each way, median of SWEEPS runs taken in turn."""
    (folder / "opscheck.toml").write_text(f'compose_project = "{project}"\n')
    base = [sys.executable, "-m", "pytest", "--opscheck", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
            "-p", "no:hypothesispytest", "-k", "stack. or host."]
    ways = {"without a state file": base, "with --opscheck-state": [*base, "--opscheck-state", "state.json"]}
    times: dict[str, list[float]] = {way: [] for way in ways}
    for _ in range(SWEEPS):
        for way, command in ways.items():
            began = time.perf_counter()
            subprocess.run(command, cwd=folder, capture_output=True, timeout=300)
            times[way].append(time.perf_counter() - began)
    for way, found in times.items():
        print(f"whole sweep of the stack checks, {way:<22} median {statistics.median(found):5.2f} s "
              f"(min {min(found):5.2f} s, {SWEEPS} runs)")


def main() -> None:
    try:
        engine = ensure_docker_engine()
        ensure_compose_plugin()
    except ServiceUnavailable as exc:
        sys.exit(f"no Docker engine: {exc}")
    client = engine.client()
    image = ensure_busybox_image(client)
    root = Path(tempfile.mkdtemp(prefix="opscheck-bench-changes-"))
    print(f"History.update, {ROUNDS} rounds each (half green, half failing), {ENV_PER_SERVICE} env vars per service")
    try:
        for count in SIZES:
            project = ComposeProject(f"benchchg{count}x{uuid.uuid4().hex[:4]}", root / f"p{count}")
            try:
                project.up(stack_yaml(image, count), wait_seconds=300)
                measure(f"Compose project of {count} service(s)", {"compose_project": project.name}, project.workdir)
                if count == WHOLE:
                    whole_sweeps(project.workdir, project.name)
            finally:
                project.down()
        try:
            postgres = start_postgres()
        except (ServiceUnavailable, OSError) as exc:
            print(f"PostgreSQL: not measured ({exc})")
            return
        try:
            import psycopg

            with psycopg.connect(postgres.url, autocommit=True) as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS alembic_version (version_num varchar(32) PRIMARY KEY)")
                conn.execute("INSERT INTO alembic_version VALUES ('a1b2c3d4e5f6') ON CONFLICT DO NOTHING")
            password = postgres.url.split("@")[0].rsplit(":", 1)[-1]
            url = postgres.url.replace(f":{password}@", ":${BENCH_PG_PASSWORD}@") if password else postgres.url
            os.environ["BENCH_PG_PASSWORD"] = password
            measure("PostgreSQL migration head", {"database_url": url}, root)
        finally:
            postgres.stop()
    finally:
        client.close()
        engine.stop()


if __name__ == "__main__":
    main()
