"""Each hostile case of issue 15, swept for real on 127.0.0.1, with its wall time and peak RSS (the sweep's own
process, from wait4) beside its goal: about one --opscheck-timeout plus the sweep's floor, and under 200 MB.

The floor is measured beside each run of each case (the same load on the machine): a sweep that imports what
these cases import (pytest, pytest-html, httpx) against a backend that refuses at once. Every case runs `--runs`
times; the medians are shown, the peak RSS is the highest of the runs. The goal of a case is its floor plus
one timeout (plus its --opscheck-wait budget for the wait case) plus `SLACK`.

Run:
    python bench/hostile.py [--runs 3] [--timeout 2] [--only NAME ...]

With --leaks, the secrecy attack of issue 25 instead, before and after: the redactor alone over the class
(secret kinds x encodings x whole/wrapped/cut x contexts, read back by tests/leakcheck.py's independent
decodings), and the whole sweep of tests/leak_attack.py (12 planted secrets, every output read). "Before" is
this checkout with issue 25's files as they were at --before (default 28adf6a) and pytest_opscheck/sinks.py
left out; "after" is this checkout.
    python bench/hostile.py --leaks [--before COMMIT]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RSS_GOAL_MB = 200
# How far over timeout + floor a case may end and still be "about one timeout" (scheduling on a busy machine).
SLACK = 1.0
WAIT = 6.0  # the --opscheck-wait case's budget, allowed on top of its timeout


def nested_bomb() -> bytes:
    """1 GiB of zeros gzipped twice (1,827 bytes), made without holding the GiB."""

    def gzipped(chunks: Iterator[bytes]) -> bytes:
        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return b"".join([*(packer.compress(c) for c in chunks), packer.flush()])

    stored = ROOT / "tests" / "data" / "gzip-gzip-1GiB.bin"
    if stored.is_file():
        return stored.read_bytes()
    zero = b"\0" * (1 << 20)
    return gzipped(iter([gzipped(zero for _ in range(1024))]))


class Peers:
    """Raw TCP peers on 127.0.0.1 that break the rules on purpose, one thread per connection."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self.stop = threading.Event()

    def serve(self, handler: Callable[[socket.socket], None]) -> int:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        listener.settimeout(0.2)
        self.sockets.append(listener)

        def loop() -> None:
            while not self.stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                self.sockets.append(conn)
                threading.Thread(target=self._guard, args=(handler, conn), daemon=True).start()

        threading.Thread(target=loop, daemon=True).start()
        return int(listener.getsockname()[1])

    @staticmethod
    def _guard(handler: Callable[[socket.socket], None], conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            handler(conn)

    def close(self) -> None:
        self.stop.set()
        for sock in self.sockets:
            sock.close()


def _head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def bombing(body: bytes) -> Callable[[socket.socket], None]:
    def handler(conn: socket.socket) -> None:
        while _head(conn):
            conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\n"
                         b"Content-Encoding: gzip, gzip\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

    return handler


def dripping(conn: socket.socket) -> None:
    _head(conn)
    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Pad: " + b"a" * 10_000:
        time.sleep(1.0)  # one byte a second, as in the issue
        conn.sendall(bytes([byte]))


def huge_body(conn: socket.socket) -> None:
    _head(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1073741824\r\n\r\n")
    chunk = b"<p>" + b"x" * 65_533
    for _ in range(1073741824 // len(chunk)):
        conn.sendall(chunk)


def huge_frame(conn: socket.socket) -> None:
    head = _head(conn)
    key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:"))
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    size = 100 * 1024 * 1024
    conn.sendall(b"\x82\x7f" + struct.pack("!Q", size))
    chunk = b"x" * 65536
    for _ in range(size // len(chunk)):
        conn.sendall(chunk)


def deep_json(conn: socket.socket) -> None:
    """A health answer nested 100,000 deep (issue 25: RecursionError as a cause)."""
    _head(conn)
    body = b"[" * 100_000 + b"]" * 100_000
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" +
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def endless_greeting(conn: socket.socket) -> None:
    """An SMTP server whose greeting never ends: `220-` continuation lines forever (issue 25: 1.1-1.9 GB)."""
    line = b"220-" + b"x" * 1000 + b"\r\n"
    while True:
        conn.sendall(line * 64)


def huge_header(conn: socket.socket) -> None:
    """An answer whose one header line never ends."""
    _head(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Pad: ")
    chunk = b"a" * 65536
    for _ in range(16_384):  # 1 GiB
        conn.sendall(chunk)


def runbook_sections(count: int, template: str) -> str:
    return "# Runbook\n\n" + "".join(template.format(i=i) for i in range(count))


@dataclass
class Case:
    """One hostile case: its config (and the files it needs), the checks selected, extra options."""

    name: str
    config: str
    select: str = "backend. or frontend."
    args: tuple[str, ...] = ()
    files: Callable[[Path], None] | None = None


@dataclass
class Figure:
    seconds: float
    rss_mb: float
    status: int


# A small launcher between the bench and the sweep: a child forked from a big process starts that big, so the
# sweep's peak RSS is read by wait4 in a process that holds nothing.
LAUNCHER = ("import os, subprocess, sys; child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, "
            "stderr=subprocess.DEVNULL); _, status, usage = os.wait4(child.pid, 0); "
            "print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))")


def sweep(folder: Path, case: Case) -> Figure:
    """One sweep of `case` in its own process: wall time, peak RSS of that process alone, exit status."""
    (folder / "opscheck.toml").write_text(case.config, encoding="utf-8")
    if case.files is not None:
        case.files(folder)
    command = [sys.executable, "-m", "pytest", "--opscheck", "-p", "no:cacheprovider", "-q", "-k", case.select,
               *case.args]
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-c", LAUNCHER, *command], cwd=folder, capture_output=True, text=True,
                         check=True)
    seconds = time.monotonic() - started
    rss_kb, status = run.stdout.split()
    return Figure(seconds, int(rss_kb) / 1024, int(status))


def median(figures: list[Figure]) -> Figure:
    return Figure(statistics.median(f.seconds for f in figures), max(f.rss_mb for f in figures), figures[-1].status)


def cases(peers: Peers, timeout: float) -> list[Case]:
    bomb, slow, big, frame = (peers.serve(bombing(nested_bomb())), peers.serve(dripping), peers.serve(huge_body),
                              peers.serve(huge_frame))
    deep, greeting, header = peers.serve(deep_json), peers.serve(endless_greeting), peers.serve(huge_header)
    refused = _closed_port()
    web = (f'backend_url = "http://127.0.0.1:{{port}}"\nfrontend_url = "http://127.0.0.1:{{port}}"\n'
           f"timeout = {timeout}\n")
    on = f'backend_url = "http://127.0.0.1:{refused}"\ntimeout = {timeout}\n'

    def loop(kind: str) -> Callable[[Path], None]:
        def make(folder: Path) -> None:
            ops = folder / "ops"
            (ops / "db").mkdir(parents=True, exist_ok=True)
            (ops / "db" / "test_team.py").write_text('import pytest\n\n@pytest.mark.severity("P2")\n'
                                                      '@pytest.mark.resolution("x")\ndef test_one():\n    pass\n')
            link = ops / ("loop" if kind == "symlink" else "db/up")
            if not link.is_symlink():
                link.symlink_to("loop" if kind == "symlink" else "../..")

        return make

    def runbook(text: str | None, special: str | None = None) -> Callable[[Path], None]:
        def make(folder: Path) -> None:
            target = folder / "runbook.md"
            if special == "fifo" and not target.exists():
                os.mkfifo(target)
            elif text is not None:
                target.write_text(text, encoding="utf-8")

        return make

    def big_env(folder: Path) -> None:
        target = folder / "big.env"
        if not target.is_file():
            with target.open("w") as out:
                for i in range(300):
                    out.write(f"VAR_{i}={'v' * (1 << 20)}\n")

    issue_runbook = runbook_sections(1863, "## Database connection errors {i}\n**Symptoms:** slow\n"
                                           "**Diagnosis:** look\n**Resolution:**\n1. restart\n")
    tiny = runbook_sections(45_000, "## Login slow {i}\n**Diagnosis:** x\n")[:999_000]
    paths = ", ".join(f'"/api/drip/{i}"' for i in range(10))
    return [
        Case("floor (a backend refusing at once)", on, "backend.health"),
        Case("nested gzip, gzip (1,827 B -> 1 GiB)", web.format(port=bomb)),
        Case(f"the same under --opscheck-wait {WAIT:g}", web.format(port=bomb), args=("--opscheck-wait", f"{WAIT:g}")),
        Case("1 GB body", web.format(port=big)),
        Case("ten api_paths dripping 1 B/s",
             f'backend_url = "http://127.0.0.1:{slow}"\ntimeout = {timeout}\napi_paths = [{paths}]\n', "api."),
        Case("100 MB WebSocket frame", f'websocket_url = "ws://127.0.0.1:{frame}/rt"\ntimeout = {timeout}\n', "ws."),
        Case("runbook: a FIFO", on + 'runbook = "runbook.md"\n', files=runbook(None, "fifo")),
        Case("runbook: /dev/zero", on + 'runbook = "/dev/zero"\n'),
        Case("runbook: 200 KB, 1,863 sections", on + 'runbook = "runbook.md"\n', files=runbook(issue_runbook)),
        Case("runbook: 1 MB cap, 45,000 sections", on + 'runbook = "runbook.md"\n', files=runbook(tiny)),
        Case("checks: symlink loop", on + 'checks = ["ops"]\n', files=loop("symlink")),
        Case("checks: directory loop", on + 'checks = ["ops"]\n', files=loop("directory")),
        Case("config: NUL in a URL", f'backend_url = "http://127.0.0.1:{refused}/\\u0000"\n'),
        Case("config: CR/LF in a URL", f'backend_url = "http://127.0.0.1:{refused}/\\r\\nX: y"\n'),
        Case("config: a 5 MB URL", f'backend_url = "http://127.0.0.1:{refused}/{"a" * 5_000_000}"\n'),
        # Issue 25's bounds
        Case("health JSON nested 100,000 deep", web.format(port=deep), "backend."),
        Case("SMTP greeting that never ends",
             f'smtp = {{ host = "127.0.0.1", port = {greeting} }}\ntimeout = {timeout}\n', "email."),
        Case("1 GiB header line", web.format(port=header), "backend."),
        Case("env_file of 300 MB", on + 'env_file = "big.env"\n', files=big_env),
    ]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Issue 25's files: reverted to --before to measure "before".
ISSUE_25_FILES = ("pytest_opscheck/redact.py", "pytest_opscheck/probes/secrets.py",
                  "pytest_opscheck/probes/resource/secret_env.py", "pytest_opscheck/config/env.py",
                  "pytest_opscheck/sweep/learned.py")


def _before_tree(commit: str, folder: Path) -> Path:
    """This checkout's package with issue 25's files as they were at `commit`, and without sinks.py."""
    import shutil

    for name in ("pytest_opscheck", "checks"):
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ISSUE_25_FILES:
        old = subprocess.run(["git", "show", f"{commit}:{name}"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
        (folder / name).write_text(old, encoding="utf-8")
    (folder / "pytest_opscheck" / "sinks.py").unlink(missing_ok=True)
    start = folder / "pytest_opscheck" / "start.py"
    start.write_text("".join(line for line in start.read_text().splitlines(keepends=True)
                             if "sinks" not in line.lower()), encoding="utf-8")
    return folder


def _redactor_of(tree: Path) -> Callable[[list[str]], Callable[[str], str]]:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"redact_{abs(hash(tree))}", tree / "pytest_opscheck" / "redact.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return lambda secrets: module.Redactor(secrets)


def leak_matrix(make: Callable[[list[str]], Callable[[str], str]]) -> tuple[int, int, dict[str, int]]:
    """The redactor over the class: (cases, leaks, leaks by secret kind)."""
    from leakcheck import found_in, views
    from test_leaks_matrix import CONTEXTS, KINDS, TEXT_ENCODINGS, TINY_CONTEXTS, transforms

    from pytest_opscheck.redact import ENCODINGS

    cases = leaked = 0
    by_kind: dict[str, int] = {}
    for kind, secret_of in KINDS.items():
        secret = secret_of()
        redact = make([secret])
        tiny = len(secret) < 4
        for encoding in TEXT_ENCODINGS if tiny else ENCODINGS:
            for planted in transforms(secret, ENCODINGS[encoding](secret)).values():
                for context in (TINY_CONTEXTS if tiny else CONTEXTS).values():
                    cases += 1
                    out = redact(context(planted))
                    if any(found_in(secret, view) for view in views(out)):
                        leaked += 1
                        by_kind[kind] = by_kind.get(kind, 0) + 1
    return cases, leaked, by_kind


def leak_sweep(pythonpath: str) -> dict[str, list[str]]:
    """The attack sweep of tests/leak_attack.py against `pythonpath`'s package: the outputs showing each secret."""
    from leak_attack import Planted, app, env_error, leak_table, sweep
    from leakcheck import Outputs
    from servers import serving

    planted = Planted()
    with serving(app(planted)) as server, tempfile.TemporaryDirectory(prefix="opscheck-leaks-") as folder:
        _, outputs = sweep(Path(folder), planted, server.url, pythonpath=pythonpath)
        refused = env_error(Path(folder), planted, pythonpath)
    table = leak_table(planted, outputs)
    table["(.env usage error)"] = [
        f"{k}" for k, v in leak_table(planted, Outputs({"stderr": refused.stderr, "stdout": refused.stdout})).items()
        if v
    ]
    return table


def leaks_main(before: str) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    with tempfile.TemporaryDirectory(prefix="opscheck-before-") as folder:
        tree = _before_tree(before, Path(folder))
        rows = []
        for label, path in (("before", tree), ("after", ROOT)):
            cases, leaked, by_kind = leak_matrix(_redactor_of(path))
            started = time.monotonic()
            table = leak_sweep(str(path))
            seconds = time.monotonic() - started
            sweep_leaks = sum(len(v) for v in table.values())
            rows.append((label, cases, leaked, by_kind, table, sweep_leaks, seconds))
            print(f"{label}: redactor class {leaked}/{cases} leaking cases {by_kind}; attack sweep "
                  f"{sweep_leaks} (secret, output) leaks in {seconds:.1f} s", flush=True)
    print()
    print("| | redactor: leaking cases | sweep: (secret, output) leaks | secrets leaked |")
    print("| --- | --- | --- | --- |")
    for label, cases, leaked, _, table, sweep_leaks, _ in rows:
        names = ", ".join(f"{k} ({len(v)})" for k, v in table.items() if v) or "none"
        print(f"| {label} | {leaked} of {cases} | {sweep_leaks} | {names} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--only", nargs="*", help="run the cases whose name contains one of these words")
    parser.add_argument("--leaks", action="store_true", help="run the secrecy attack (issue 25), before and after")
    parser.add_argument("--before", default="28adf6a", help="the commit whose issue 25 files are 'before'")
    options = parser.parse_args()
    if options.leaks:
        leaks_main(options.before)
        return
    peers = Peers()
    rows = []
    try:
        floor_case, *todo = cases(peers, options.timeout)
        for case in todo:
            if options.only and not any(word in case.name for word in options.only):
                continue
            # The floor is swept right before each run of the case: both see the same load on the machine.
            floors, figures = [], []
            with tempfile.TemporaryDirectory(prefix="opscheck-floor-") as base, \
                    tempfile.TemporaryDirectory(prefix="opscheck-hostile-") as folder:
                for _ in range(options.runs):
                    floors.append(sweep(Path(base), floor_case))
                    figures.append(sweep(Path(folder), case))
            floor, figure = median(floors), median(figures)
            allowed = options.timeout + (WAIT if "--opscheck-wait" in case.args else 0.0)
            goal = floor.seconds + allowed + SLACK
            verdict = "ok" if figure.seconds <= goal and figure.rss_mb < RSS_GOAL_MB else "OVER"
            rows.append((case.name, figure, floor, goal, verdict))
            print(f"{case.name:<38} {figure.seconds:6.2f} s {figure.rss_mb:5.0f} MB exit {figure.status}  floor "
                  f"{floor.seconds:5.2f} s  goal <= {goal:5.2f} s, < {RSS_GOAL_MB} MB: {verdict}", flush=True)
    finally:
        peers.close()
    print()
    print(f"| case (--opscheck-timeout {options.timeout:g}, median of {options.runs}) | wall | peak RSS | exit "
          "| floor | goal | |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, figure, floor, goal, verdict in rows:
        print(f"| {name} | {figure.seconds:.2f} s | {figure.rss_mb:.0f} MB | {figure.status} | {floor.seconds:.2f} s "
              f"| ≤ {goal:.2f} s, < {RSS_GOAL_MB} MB | {verdict} |")


if __name__ == "__main__":
    main()
