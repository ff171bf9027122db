"""The sweep's wall time and peak memory on a healthy, a refusing and a blackholed local target, beside
the tools an on-call engineer would reach for instead (monitoring-plugins one after another, and
pytest-testinfra for the containers), on the same target in the same run.

Run (as root on this machine, or with a Docker engine and PostgreSQL at hand):
    python bench/sweep.py [--runs 5] [--timeout 2]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import realservices  # noqa: E402 - the tests' provisioning of a Docker engine and PostgreSQL

PLUGINS = Path("/usr/lib/nagios/plugins")
DB_PASSWORD = "bench-db-password"
SMOKE_PASSWORD = "bench-password-1"
CONTAINERS = ("backend", "worker", "db")
PYTEST_MODULES = "pytest, pytest_html.plugin"


def measured(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, int]:
    """Wall seconds, peak RSS (KiB) and exit status of `command`, run in a child of a fresh process."""
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *command], cwd=cwd, env=env, capture_output=True, text=True)
    wall, rss, code = out.stdout.split()
    return float(wall), int(rss), int(code)


def median_run(commands: list[list[str]], cwd: Path, env: dict[str, str], runs: int) -> tuple[float, int]:
    """Median wall time and the peak RSS of running `commands` one after another, `runs` times."""
    walls, peak = timed_runs(commands, cwd, env, runs)
    return statistics.median(walls), peak


def timed_runs(commands: list[list[str]], cwd: Path, env: dict[str, str], runs: int) -> tuple[list[float], int]:
    """The wall time of each of `runs` runs of `commands` one after another, and their peak RSS."""
    walls, peaks = [], []
    for _ in range(runs):
        total, peak = 0.0, 0
        for command in commands:
            wall, rss, _ = measured(command, cwd, env)
            total += wall
            peak = max(peak, rss)
        walls.append(total)
        peaks.append(peak)
    return walls, max(peaks)


@contextlib.contextmanager
def blackholes(count: int) -> Iterator[list[int]]:
    """Ports that accept TCP connections and never answer."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sockets.append(sock)
    try:
        yield [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def config_text(http: int, ws: int, smtp: int, db: int, project: str, timeout: float) -> str:
    return textwrap.dedent(
        f"""
        compose_project = "{project}"
        stack_db_address = "127.0.0.1:{db}"
        backend_url = "http://127.0.0.1:{http}"
        health_path = "/health"
        metrics_path = "/metrics"
        frontend_url = "http://127.0.0.1:{http}"
        frontend_routes = ["/", "/login", "/settings"]
        api_paths = ["/api/items"]
        database_url = "postgresql://postgres:${{BENCH_DB_PASSWORD}}@127.0.0.1:{db}/postgres"
        websocket_url = "ws://127.0.0.1:{ws}/realtime"
        smtp = {{ host = "127.0.0.1", port = {smtp}, sender = "ops@example.test" }}
        timeout = {timeout}

        [auth]
        login_path = "/api/auth/login"
        style = "json"
        username = "bench@example.test"
        password = "${{BENCH_PASSWORD}}"
        probe_path = "/api/me"
        """
    )


def monitoring_plugins(http: int, ws: int, smtp: int, db: int, timeout: float) -> list[list[str]]:
    """The same probes with Debian's monitoring-plugins, one command each."""
    t = str(max(1, round(timeout)))
    web = [str(PLUGINS / "check_http"), "-H", "127.0.0.1", "-p", str(http), "-t", t]
    return [
        [*web, "-u", "/health", "-s", "ok"],
        [*web, "-u", "/"],
        *[[*web, "-u", route] for route in ("/login", "/settings", "/assets/app.js", "/assets/app.css")],
        [*web, "-u", "/api/items"],
        [*web, "-u", "/metrics", "-s", "websocket_connections"],
        [*web, "-u", "/api/auth/login", "-P", '{"username":"bench@example.test","password":"x"}', "-e", "401"],
        [str(PLUGINS / "check_pgsql"), "-H", "127.0.0.1", "-P", str(db), "-d", "postgres", "-l", "postgres",
         "-p", DB_PASSWORD, "-t", t],
        [str(PLUGINS / "check_smtp"), "-H", "127.0.0.1", "-p", str(smtp), "-t", t],
        [str(PLUGINS / "check_tcp"), "-H", "127.0.0.1", "-p", str(ws), "-t", t],
    ]


def testinfra_file(folder: Path, project: str) -> Path:
    path = folder / "test_containers.py"
    names = [f"{project}-{c}-1" for c in CONTAINERS]
    path.write_text(
        "import pytest\n\n"
        f"@pytest.mark.parametrize('name', {names!r})\n"
        "def test_running(host, name):\n"
        "    assert host.docker(name).is_running\n"
    )
    return path


def slowest_probe(client: Any, project: str, url: str, http: int) -> tuple[str, float]:
    """Each probe alone, once; the slowest of them. The stats of every container at once is what a sweep
    waits for (the engine answers concurrent samples on its one-second tick, often two ticks apart)."""
    import httpx
    import psycopg

    containers = client.containers.list(filters={"label": f"com.docker.compose.project={project}"})

    def stats_one() -> None:
        containers[0].stats(stream=False)

    def stats_all() -> None:
        with ThreadPoolExecutor(len(containers)) as pool:
            list(pool.map(lambda c: c.stats(stream=False), containers))

    def database() -> None:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")

    def health() -> None:
        httpx.get(f"http://127.0.0.1:{http}/health", timeout=5)

    timings = {}
    probes = (
        ("docker stats sample, one container", stats_one),
        (f"docker stats samples, {len(containers)} containers at once", stats_all),
        ("PostgreSQL SELECT 1", database),
        ("HTTP health", health),
    )
    for name, probe in probes:
        started = time.perf_counter()
        probe()
        timings[name] = time.perf_counter() - started
        print(f"probe alone: {name}: {timings[name]:.2f} s")
    name = max(timings, key=lambda k: timings[k])
    return name, timings[name]


def python_floor(env: dict[str, str], runs: int, modules: str) -> float:
    """Median wall time of a Python that only imports `modules` and exits: what a sweep pays before the probes
    that need them can start."""
    wall, _ = median_run([[sys.executable, "-c", f"import {modules}"]], ROOT, env, runs)
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    engine = realservices.ensure_docker_engine()
    realservices.ensure_compose_plugin()
    import docker

    client = docker.from_env()
    image = realservices.ensure_busybox_image(client)
    postgres = realservices.start_postgres()
    work = Path(tempfile.mkdtemp(prefix="opscheck-bench-"))
    project = f"bench{os.getpid()}"
    compose = realservices.ComposeProject(project, work / "stack")
    ports = [realservices.free_port() for _ in range(3)]
    app = subprocess.Popen([sys.executable, str(ROOT / "bench" / "app.py"), *map(str, ports)], stdout=subprocess.PIPE,
                           text=True)
    try:
        assert app.stdout is not None and app.stdout.readline().strip() == "ready"
        signing_key = f"    environment:\n      SECRET_KEY: {secrets.token_hex(24)}\n"
        services = "".join(
            f"  {name}:\n    image: {image}\n    network_mode: host\n    command: sleep 3600\n"
            + (signing_key if name == "backend" else "")
            for name in CONTAINERS
        )
        compose.up(f"services:\n{services}")
        with contextlib.closing(__import__("psycopg").connect(postgres.url, autocommit=True)) as conn:
            conn.execute(f"ALTER ROLE postgres PASSWORD '{DB_PASSWORD}'")
        # Only pytest, pytest-html and this plugin: other plugins installed here (hypothesis alone costs ~2 s
        # to load) are not part of the tool being measured.
        env = {**os.environ, "BENCH_DB_PASSWORD": DB_PASSWORD, "BENCH_PASSWORD": SMOKE_PASSWORD,
               "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        sweep = [sys.executable, "-m", "pytest", "-p", "pytest_opscheck.plugin", "-p", "pytest_metadata.plugin",
                 "-p", "pytest_html.plugin", "--opscheck", "-p", "no:cacheprovider", "-q"]
        http, ws, smtp = ports
        rows: list[tuple[str, float, int, float | None]] = []

        spreads: dict[str, list[float]] = {}

        def ours(label: str, config: str, extra_env: dict[str, str]) -> float:
            folder = work / label
            folder.mkdir()
            (folder / "opscheck.toml").write_text(config)
            walls, peak = timed_runs([sweep], folder, {**env, **extra_env}, args.runs)
            spreads[label] = walls
            rows.append((f"opscheck sweep, {label}", statistics.median(walls), peak, None))
            return statistics.median(walls)

        healthy = ours("healthy", config_text(http, ws, smtp, postgres.port, project, args.timeout), {})
        plugins = monitoring_plugins(http, ws, smtp, postgres.port, args.timeout)
        wall, peak = median_run(plugins, work, env, args.runs)
        rows.append((f"monitoring-plugins, healthy ({len(plugins)} commands in a row)", wall, peak, wall / healthy))
        infra = testinfra_file(work, project)
        wall, peak = median_run([[sys.executable, "-m", "pytest", "-p", "testinfra.plugin", "-p", "no:cacheprovider",
                                  "-q", "--hosts=local://", str(infra)]], work, env, args.runs)
        rows.append((f"pytest-testinfra, {len(CONTAINERS)} containers running", wall, peak, wall / healthy))

        dead = [realservices.free_port() for _ in range(5)]
        refusing = ours("refusing", config_text(dead[0], dead[1], dead[2], dead[3], project, args.timeout),
                        {"DOCKER_HOST": f"tcp://127.0.0.1:{dead[4]}"})
        wall, peak = median_run(monitoring_plugins(dead[0], dead[1], dead[2], dead[3], args.timeout), work, env,
                                args.runs)
        rows.append(("monitoring-plugins, refusing", wall, peak, wall / refusing))
        with blackholes(5) as holes:
            black = ours("blackholed", config_text(holes[0], holes[1], holes[2], holes[3], project, args.timeout),
                         {"DOCKER_HOST": f"tcp://127.0.0.1:{holes[4]}"})
            nagios = monitoring_plugins(holes[0], holes[1], holes[2], holes[3], args.timeout)
            wall, peak = median_run(nagios, work, env, 1)
            rows.append(("monitoring-plugins, blackholed (1 run)", wall, peak, wall / black))

        db_url = postgres.url.replace(postgres.password, DB_PASSWORD)
        probe, probe_seconds = slowest_probe(client, project, db_url, http)
        floor = python_floor(env, args.runs, f"{PYTEST_MODULES}, docker, httpx, psycopg, websockets.sync.client")
        before_stats = python_floor(env, args.runs, f"{PYTEST_MODULES}, docker")
        print(f"runs: {args.runs} (median), probe timeout {args.timeout:g} s, {os.cpu_count()} cores\n")
        print(f"| {'what':58} | {'wall':>8} | {'peak RSS':>9} | {'vs opscheck':>11} |")
        print(f"| {'-' * 58} | {'-' * 8}:| {'-' * 9}:| {'-' * 11}:|")
        for label, wall, peak, ratio in rows:
            print(f"| {label:58} | {wall:7.2f}s | {peak / 1024:7.0f}MB | {f'{ratio:.1f}x' if ratio else '-':>11} |")
        print(f"\nslowest probe: {probe} {probe_seconds:.2f} s; healthy sweep {healthy:.2f} s "
              f"(target: <= slowest probe + 0.5 s = {probe_seconds + 0.5:.2f} s)")
        for label, walls in spreads.items():
            print(f"opscheck sweep, {label}, each run: " + " ".join(f"{w:.2f}" for w in walls) + " s")
        print(f"python start, imports of pytest, pytest-html and the client libraries, exit (no probe): {floor:.2f} s")
        print(f"floor of a healthy sweep: python start with pytest, pytest-html, docker imported ({before_stats:.2f} s)"
              f" + the stats samples ({probe_seconds:.2f} s) = {before_stats + probe_seconds:.2f} s")
        print(f"floor of a blackholed sweep: python start with every client library imported ({floor:.2f} s)"
              f" + the timeout ({args.timeout:g} s) = {floor + args.timeout:.2f} s")
        print(f"refusing sweep {refusing:.2f} s (target < 2 s); blackholed sweep {black:.2f} s "
              f"(target about timeout + 1 s = {args.timeout + 1:.1f} s)")
    finally:
        app.terminate()
        app.wait(timeout=10)
        compose.down()
        postgres.stop()
        client.close()
        engine.stop()


if __name__ == "__main__":
    main()
