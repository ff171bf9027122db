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
    "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "print(time.perf_counter() - t, u.ru_maxrss, r.returncode, u.ru_utime + u.ru_stime)"
)


@dataclass(frozen=True)
class Runs:
    """The wall time and the CPU time (user + system) of each run, the peak RSS over all of them (KiB) and the
    exit statuses seen. CPU time hardly moves with the machine's load; wall time does."""

    walls: tuple[float, ...]
    peak_kib: int
    codes: frozenset[int]
    cpus: tuple[float, ...] = ()

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpus) if self.cpus else 0.0

    @property
    def peak_mb(self) -> float:
        return self.peak_kib / 1024

    def each(self) -> str:
        return " ".join(f"{w:.2f}" for w in self.walls) + " s"


def measured(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, int, float]:
    """Wall seconds, peak RSS (KiB), exit status and CPU seconds of `command`, run in a child of a fresh process."""
    out = subprocess.run([sys.executable, "-c", PROBE, *command], cwd=cwd, env=env, capture_output=True, text=True)
    wall, rss, code, cpu = out.stdout.split()
    return float(wall), int(rss), int(code), float(cpu)


@dataclass(frozen=True)
class Subject:
    """What one row measures: commands run one after another, from `cwd`, with `env`."""

    commands: list[list[str]]
    cwd: Path
    env: dict[str, str]


def runs(commands: list[list[str]], cwd: Path, env: dict[str, str], count: int, warmup: int = 1) -> Runs:
    """`count` runs of `commands` one after another: each run's total wall time, the peak RSS of any command."""
    return interleaved({"": Subject(commands, cwd, env)}, count, warmup)[""]


def interleaved(subjects: dict[str, Subject], count: int, warmup: int = 1) -> dict[str, Runs]:
    """`count` runs of each subject, taken in turn (A B C A B C ...) after `warmup` runs that are not counted
    (they write the bytecode caches): a machine whose speed drifts during the bench moves every subject alike, so
    the figures compared (a sweep and its floor) stay comparable."""
    walls: dict[str, list[float]] = {label: [] for label in subjects}
    cpus: dict[str, list[float]] = {label: [] for label in subjects}
    peaks = dict.fromkeys(subjects, 0)
    codes: dict[str, set[int]] = {label: set() for label in subjects}
    for run in range(warmup + count):
        for label, subject in subjects.items():
            total, peak, cpu = 0.0, 0, 0.0
            for command in subject.commands:
                wall, rss, code, used = measured(command, subject.cwd, subject.env)
                total, cpu, peak = total + wall, cpu + used, max(peak, rss)
                codes[label].add(code)
            if run >= warmup:
                walls[label].append(total)
                cpus[label].append(cpu)
                peaks[label] = max(peaks[label], peak)
    return {label: Runs(tuple(walls[label]), peaks[label], frozenset(codes[label]), tuple(cpus[label]))
            for label in subjects}


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
