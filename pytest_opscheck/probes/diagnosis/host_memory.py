"""Resources: the memory left on the engine's host (`free -m`), read from the kernel where the engine is local.

Nothing is started to find out: on a remote engine the figure cannot be read from here, and the check says
so instead of guessing.
"""

from __future__ import annotations

from pathlib import Path

from ..resource.stack import Stack
from ..result import Finding, table
from .common import size as _bytes

MEMINFO = Path("/proc/meminfo")


def meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo's figures in bytes ("MemAvailable:  1234 kB" -> {"MemAvailable": 1263616})."""
    figures = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            figures[name.strip()] = int(parts[0]) * (1024 if parts[1:2] == ["kB"] else 1)
    return figures


def memory_verdict(figures: dict[str, int], percent_limit: float, where: str) -> Finding:
    """Available memory (MemAvailable: what can be had without swapping) against `percent_limit` of the total."""
    total = figures.get("MemTotal", 0)
    if not total:
        return Finding.failed(f"no MemTotal in {where}: the kernel's memory figures could not be read")
    # Kernels before 3.14 have no MemAvailable: free plus the page cache is the closest estimate.
    available = figures.get("MemAvailable")
    estimate = available is None
    if available is None:
        available = figures.get("MemFree", 0) + figures.get("Cached", 0) + figures.get("Buffers", 0)
    percent = 100.0 * available / total
    swap_total, swap_free = figures.get("SwapTotal", 0), figures.get("SwapFree", 0)
    rows = [
        ["Mem:", _bytes(total), _bytes(total - figures.get("MemFree", 0)), _bytes(figures.get("MemFree", 0)),
         _bytes(available)],
        ["Swap:", _bytes(swap_total), _bytes(swap_total - swap_free), _bytes(swap_free), "-"],
    ]
    evidence = {
        "free": table(["", "total", "used", "free", "available"], rows),
        "memory": f"{where}: {_bytes(available)} available of {_bytes(total)} ({percent:.1f}%, limit "
        f"{percent_limit:g}%)" + (" (estimated: this kernel has no MemAvailable)" if estimate else ""),
    }
    if percent < percent_limit:
        swapping = f"; swap {_bytes(swap_total - swap_free)} used" if swap_total else "; no swap"
        return Finding.failed(
            f"only {percent:.1f}% of memory available on the engine's host ({_bytes(available)} of "
            f"{_bytes(total)}, limit {percent_limit:g}%){swapping}",
            evidence,
        )
    return Finding.passed(evidence)


def memory_free(stack: Stack, percent_limit: float, source: Path = MEMINFO) -> Finding | None:
    """The engine's host's available memory; None when the engine is not on this machine (it cannot be read)."""
    if not stack.engine_is_local:
        return None
    try:
        text = source.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        return Finding.failed(f"cannot read {source}: {exc.strerror or exc}")
    return memory_verdict(meminfo(text), percent_limit, f"{source} of this host (the engine's)")


def remote_total(stack: Stack) -> str:
    """What the engine itself says of its host's memory (`docker info` MemTotal), for the skip reason."""
    total = stack.engine_info.get("MemTotal")
    return f" (docker info: MemTotal {_bytes(float(total))})" if isinstance(total, int | float) and total else ""
