"""How the bench measures: each command in a child of a fresh Python, its wall time and its peak RSS; runs of
commands one after another; listeners that accept and never answer."""

from __future__ import annotations

import contextlib
import socket
import statistics
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROBE = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); "
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)"
)


@dataclass(frozen=True)
class Runs:
    """The wall time of each run, the peak RSS over all of them (KiB) and the exit statuses seen."""

    walls: tuple[float, ...]
    peak_kib: int
    codes: frozenset[int]

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def peak_mb(self) -> float:
        return self.peak_kib / 1024

    def each(self) -> str:
        return " ".join(f"{w:.2f}" for w in self.walls) + " s"


def measured(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, int]:
    """Wall seconds, peak RSS (KiB) and exit status of `command`, run in a child of a fresh process."""
    out = subprocess.run([sys.executable, "-c", PROBE, *command], cwd=cwd, env=env, capture_output=True, text=True)
    wall, rss, code = out.stdout.split()
    return float(wall), int(rss), int(code)


def runs(commands: list[list[str]], cwd: Path, env: dict[str, str], count: int) -> Runs:
    """`count` runs of `commands` one after another: each run's total wall time, the peak RSS of any command."""
    walls, peak, codes = [], 0, set()
    for _ in range(count):
        total = 0.0
        for command in commands:
            wall, rss, code = measured(command, cwd, env)
            total += wall
            peak = max(peak, rss)
            codes.add(code)
        walls.append(total)
    return Runs(tuple(walls), peak, frozenset(codes))


@contextlib.contextmanager
def blackholes(count: int) -> Iterator[list[int]]:
    """Ports that accept TCP connections and never answer."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sockets.append(sock)
    try:
        yield [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()
