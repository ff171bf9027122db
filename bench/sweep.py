"""The sweep's wall time and peak memory on a healthy, a refusing and a blackholed local target, beside the tools
an on-call engineer would reach for instead (monitoring-plugins one after another, and pytest-testinfra for the
containers), on the same target in the same run; the sweep of stacks of 5, 20 and 50 containers and of 10 and 100
API paths; and each goal beside the floor under it, measured in the same run.

Run (as root on this machine, or with a Docker engine and PostgreSQL at hand):
    python bench/sweep.py [--runs 7] [--timeout 2] [--readme]
--readme writes the figures into docs/speed.md (between its speed markers).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]
import realservices  # noqa: E402 - the tests' provisioning of a Docker engine and PostgreSQL
import scale  # noqa: E402
from measure import Runs, Subject, blackholes, interleaved, runs  # noqa: E402

PLUGINS = Path("/usr/lib/nagios/plugins")
DB_PASSWORD = "bench-db-password"
SMOKE_PASSWORD = "bench-password-1"
CONTAINERS = ("backend", "worker", "db")
IMPORTS = "pytest, pytest_html.plugin, docker, httpx, httpcore, psycopg, websockets.sync.client"
MARKERS = ("<!-- speed:start -->", "<!-- speed:end -->")


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


def engine_stats_seconds(client: Any, project: str) -> tuple[float, float]:
    """What the engine's stats API takes (no longer the sweep's source on a local engine): one container's
    sample, and every container's at once."""
    found = client.containers.list(filters={"label": f"com.docker.compose.project={project}"})
    started = time.perf_counter()
    found[0].stats(stream=False)
    one = time.perf_counter() - started
    started = time.perf_counter()
    with ThreadPoolExecutor(len(found)) as pool:
        list(pool.map(lambda c: c.stats(stream=False), found))
    return one, time.perf_counter() - started


class Bench:
    """The sweeps and the tools beside them, in one work folder, with one environment."""

    def __init__(self, work: Path, count: int, timeout: float) -> None:
        self.work, self.count, self.timeout = work, count, timeout
        # Only pytest, pytest-html and this plugin: other plugins installed here (hypothesis alone costs ~2 s
        # to load) are not part of the tool being measured.
        # Bytecode is cached (in the work folder) as an installed package has it, even where the environment
        # says not to write it (PYTHONDONTWRITEBYTECODE): each subject's first, uncounted run writes it.
        self.env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
                    "PYTHONPYCACHEPREFIX": str(work / "pycache"), "BENCH_DB_PASSWORD": DB_PASSWORD,
                    "BENCH_PASSWORD": SMOKE_PASSWORD, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        self.command = [sys.executable, "-m", "pytest", "-p", "pytest_opscheck.plugin", "-p",
                        "pytest_metadata.plugin", "-p", "pytest_html.plugin", "--opscheck", "-p", "no:cacheprovider",
                        "-q"]
        self.floor = Subject([[sys.executable, "-c", f"import {IMPORTS}"]], ROOT, self.env)
        self.rows: list[tuple[str, Runs, Runs | None]] = []

    def subject(self, label: str, config: str, extra_env: dict[str, str] | None = None) -> Subject:
        folder = self.work / re.sub(r"\W+", "-", label)
        folder.mkdir()
        (folder / "opscheck.toml").write_text(config)
        return Subject([self.command], folder, {**self.env, **(extra_env or {})})

    def against_floor(self, label: str, config: str, extra_env: dict[str, str] | None = None) -> tuple[Runs, Runs]:
        """The sweep and the import floor, run in turn: (sweep, floor)."""
        measured = interleaved({label: self.subject(label, config, extra_env), "floor": self.floor}, self.count)
        return self.row(f"opscheck sweep, {label}", measured[label]), measured["floor"]

    def sweeps(self, configs: dict[str, str]) -> dict[str, Runs]:
        """Sweeps of several configs, run in turn."""
        return interleaved({label: self.subject(label, config) for label, config in configs.items()}, self.count)

    def row(self, label: str, measured: Runs, against: Runs | None = None) -> Runs:
        self.rows.append((label, measured, against))
        return measured

    def tool(self, label: str, commands: list[list[str]], against: Runs, count: int | None = None) -> Runs:
        """A tool beside the sweep; one given its own `count` (a slow one) runs without a warm-up."""
        return self.row(label, runs(commands, self.work, self.env, count or self.count, 0 if count else 1), against)

    def probes_alone(self, label: str, count: int = 3, extra_env: dict[str, str] | None = None) -> dict[str, float]:
        """Each probe of the target of sweep `label` alone, the median of `count` fresh processes."""
        seen: dict[str, list[float]] = {}
        for _ in range(count):
            out = subprocess.run([sys.executable, str(ROOT / "bench" / "probes.py"), str(self.work / label)],
                                 env={**self.env, **(extra_env or {})}, capture_output=True, text=True, check=True)
            for name, seconds in json.loads(out.stdout.splitlines()[-1]).items():
                seen.setdefault(name, []).append(seconds)
        return {name: sorted(values)[len(values) // 2] for name, values in seen.items()}


def table(bench: Bench) -> list[str]:
    lines = [f"| {'what (median of ' + str(bench.count) + ' runs)':58} | {'wall':>8} | {'cpu':>7} | {'peak RSS':>9} | "
             f"{'vs opscheck':>11} |", f"| {'-' * 58} | {'-' * 7}:| {'-' * 6}:| {'-' * 8}:| {'-' * 10}:|"]
    for label, measured, against in bench.rows:
        ratio = f"{measured.median / against.median:.1f}x" if against else "-"
        failed = "" if measured.codes <= {0, 1} else f" (exit {sorted(measured.codes)})"
        lines.append(f"| {label + failed:58} | {measured.median:7.2f}s | {measured.cpu:5.2f}s | "
                     f"{measured.peak_mb:7.0f}MB | {ratio:>11} |")
    return lines


def goal(what: str, measured: float, floor: str, bound: float) -> str:
    verdict = "met" if measured <= bound else "NOT met"
    return f"| {what:44} | {measured:6.2f} s | {floor:52} | {bound:6.2f} s | {verdict:7} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--readme", action="store_true", help="write the figures into docs/speed.md")
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
    projects: list[realservices.ComposeProject] = []

    def up(name: str, text: str) -> None:
        projects.append(realservices.ComposeProject(name, work / name))
        projects[-1].up(text, wait_seconds=600)

    def down(name: str) -> None:
        for one in [p for p in projects if p.name == name]:
            one.down(timeout=600)
            projects.remove(one)

    load = os.getloadavg()[0]
    try:
        assert app.stdout is not None and app.stdout.readline().strip() == "ready"
        signing_key = f"    environment:\n      SECRET_KEY: {secrets.token_hex(24)}\n"
        compose.up("services:\n" + "".join(
            f"  {name}:\n    image: {image}\n    network_mode: host\n    command: sleep 3600\n"
            + (signing_key if name == "backend" else "") for name in CONTAINERS))
        with contextlib.closing(__import__("psycopg").connect(postgres.url, autocommit=True)) as conn:
            conn.execute(f"ALTER ROLE postgres PASSWORD '{DB_PASSWORD}'")
        bench, timeout, (http, ws, smtp) = Bench(work, args.runs, args.timeout), args.timeout, ports

        healthy, healthy_floor = bench.against_floor(
            "healthy", config_text(http, ws, smtp, postgres.port, project, timeout))
        plugins = monitoring_plugins(http, ws, smtp, postgres.port, timeout)
        bench.tool(f"monitoring-plugins, healthy ({len(plugins)} commands in a row)", plugins, healthy)
        infra = testinfra_file(work, project)
        bench.tool(f"pytest-testinfra, {len(CONTAINERS)} containers running", [[
            sys.executable, "-m", "pytest", "-p", "testinfra.plugin", "-p", "no:cacheprovider", "-q",
            "--hosts=local://", str(infra)]], healthy)
        dead = [realservices.free_port() for _ in range(5)]
        refusing, refusing_floor = bench.against_floor(
            "refusing", config_text(dead[0], dead[1], dead[2], dead[3], project, timeout),
            {"DOCKER_HOST": f"tcp://127.0.0.1:{dead[4]}"})
        bench.tool("monitoring-plugins, refusing", monitoring_plugins(*dead[:4], timeout), refusing)
        with blackholes(5) as holes:
            black, black_floor = bench.against_floor(
                "blackholed", config_text(holes[0], holes[1], holes[2], holes[3], project, timeout),
                {"DOCKER_HOST": f"tcp://127.0.0.1:{holes[4]}"})
            bench.tool("monitoring-plugins, blackholed (1 run)", monitoring_plugins(*holes[:4], timeout), black, 1)
            held = bench.probes_alone("blackholed", 1, {"DOCKER_HOST": f"tcp://127.0.0.1:{holes[4]}"})
            # The same without the WebSocket: whether its opener is what holds the blackholed sweep.
            no_ws = config_text(holes[0], holes[1], holes[2], holes[3], project, timeout)
            no_ws = "\n".join(line for line in no_ws.splitlines() if not line.startswith("websocket_url"))
            black_no_ws, _ = bench.against_floor("blackholed, no websocket_url", no_ws,
                                                 {"DOCKER_HOST": f"tcp://127.0.0.1:{holes[4]}"})

        probes = bench.probes_alone("healthy")
        api_one, api_all = engine_stats_seconds(client, project)
        stacks = scale.containers(up, down, image, bench.sweeps, timeout)
        paths = scale.paths(http, bench.sweeps, timeout)

        slowest = max(probes, key=lambda k: probes[k])
        floor = healthy_floor.median + probes[slowest]
        lines = [
            f"`python bench/sweep.py --runs {args.runs} --timeout {timeout:g}` ({os.cpu_count()} cores, "
            f"probe timeout {timeout:g} s; load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end)",
            "", *table(bench), "",
            f"| {'scale (median of ' + str(args.runs) + ' runs)':58} | {'wall':>8} | {'cpu':>7} | {'peak RSS':>9} | "
            f"{'vs smallest':>11} |", f"| {'-' * 58} | {'-' * 7}:| {'-' * 6}:| {'-' * 8}:| {'-' * 10}:|",
            *scale.table(stacks), *scale.table(paths), "",
            f"| {'goal':44} | measured | {'floor, measured in turn with it':52} |    bound | verdict |",
            f"| {'-' * 44} | {'-' * 7}:| {'-' * 52} | {'-' * 7}:| {'-' * 7} |",
            goal("healthy <= floor + 0.3 s", healthy.median,
                 f"{floor:.2f} s = imports {healthy_floor.median:.2f} + {slowest} {probes[slowest]:.2f}", floor + 0.3),
            goal("refusing <= import floor + 0.5 s", refusing.median, f"imports {refusing_floor.median:.2f} s",
                 refusing_floor.median + 0.5),
            goal("blackholed <= import floor + timeout + 0.3 s", black.median,
                 f"{black_floor.median + timeout:.2f} s = imports {black_floor.median:.2f} + timeout {timeout:g}",
                 black_floor.median + timeout + 0.3),
            goal("blackholed without websocket_url, same bound", black_no_ws.median,
                 f"{black_floor.median + timeout:.2f} s = imports {black_floor.median:.2f} + timeout {timeout:g}",
                 black_floor.median + timeout + 0.3),
            goal(f"{stacks[-1].size} containers <= 1.5 x {stacks[0].size}", stacks[-1].runs.median,
                 f"{stacks[0].size} containers {stacks[0].runs.median:.2f} s", 1.5 * stacks[0].runs.median),
            goal(f"{paths[-1].size} API paths <= 1.5 x {paths[0].size}", paths[-1].runs.median,
                 f"{paths[0].size} paths {paths[0].runs.median:.2f} s", 1.5 * paths[0].runs.median),
            "",
            f"- CPU time (user + system, hardly moved by the machine's load): healthy {healthy.cpu:.2f} s against "
            f"its import floor's {healthy_floor.cpu:.2f} s, refusing {refusing.cpu:.2f} s against "
            f"{refusing_floor.cpu:.2f} s, blackholed {black.cpu:.2f} s against {black_floor.cpu:.2f} s; "
            f"{stacks[-1].size} containers {stacks[-1].runs.cpu:.2f} s against {stacks[0].size} "
            f"{stacks[0].runs.cpu:.2f} s; {paths[-1].size} paths {paths[-1].runs.cpu:.2f} s against {paths[0].size} "
            f"{paths[0].runs.cpu:.2f} s",
            f"- memory: {scale.per_item_mb(stacks) * 1024:.0f} KB more peak RSS per container "
            f"({stacks[0].size} to {stacks[-1].size}), {scale.per_item_mb(paths) * 1024:.0f} KB per API path",
            "- each probe alone, after the imports (median of 3): " + ", ".join(
                f"{name} {seconds:.2f} s" for name, seconds in sorted(probes.items(), key=lambda kv: -kv[1])),
            "- each probe alone against the blackholes (one run; each should take about the timeout): " + ", ".join(
                f"{name} {seconds:.2f} s" for name, seconds in sorted(held.items(), key=lambda kv: -kv[1])),
            f"- import floor (python -c 'import {IMPORTS}'), run in turn with each sweep: "
            f"{healthy_floor.median:.2f} / {refusing_floor.median:.2f} / {black_floor.median:.2f} s",
            f"- the engine's stats API, no longer the source on a local engine: one container {api_one:.2f} s, "
            f"{len(CONTAINERS)} at once {api_all:.2f} s",
            *[f"- opscheck sweep, {label.removeprefix('opscheck sweep, ')}, each run: {m.each()}"
              for label, m, _ in bench.rows if label.startswith("opscheck")],
        ]
        print("\n".join(lines))
        if args.readme:
            readme = ROOT / "docs" / "speed.md"  # the speed section's home since the README was cut down
            text = readme.read_text()
            if MARKERS[0] not in text:
                raise SystemExit(f"{readme}: no {MARKERS[0]} marker to write the figures between")
            block = f"{MARKERS[0]}\n" + "\n".join(lines) + f"\n{MARKERS[1]}"
            readme.write_text(re.sub(f"{re.escape(MARKERS[0])}.*?{re.escape(MARKERS[1])}", lambda _: block, text,
                                     flags=re.DOTALL))
    finally:
        app.terminate()
        app.wait(timeout=10)
        for one in projects:
            one.down(timeout=600)
        compose.down()
        postgres.stop()
        client.close()
        engine.stop()


if __name__ == "__main__":
    main()
