"""Evidence helpers every stack diagnosis shares, Compose or Swarm: the engine gone, log excerpts, sizes."""

from __future__ import annotations

from ..resource.stack import Stack
from ..result import Finding


def engine_lost(stack: Stack) -> Finding | None:
    """A failed finding when the engine stopped answering since the sweep opened the stack."""
    lost = stack.engine_lost()
    return Finding.failed(f"the Docker engine stopped answering during the sweep: {lost}") if lost else None


def excerpt(lines: list[str], hits: list[int]) -> str:
    """The matching lines with two lines before and three after each, runs apart marked `--` (first 10 hits)."""
    shown: list[str] = []
    last = -1
    for i in hits[:10]:
        start = max(last + 1, i - 2)
        if start > last + 1 and shown:
            shown.append("--")
        shown.extend(lines[start : i + 4])
        last = min(len(lines) - 1, i + 3)
    return "\n".join(shown)


def size(value: float) -> str:
    """Bytes as `docker stats` shows them: B, KiB, MiB, GiB, TiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
