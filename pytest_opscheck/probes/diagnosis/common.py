"""Evidence helpers every stack diagnosis shares, Compose or Swarm: the engine gone, log excerpts, sizes."""

from __future__ import annotations

from ..facts import decisive, is_frame
from ..resource.stack import Stack
from ..result import Finding


def engine_lost(stack: Stack) -> Finding | None:
    """A failed finding when the engine stopped answering since the sweep opened the stack."""
    lost = stack.engine_lost()
    return Finding.failed(f"the Docker engine stopped answering during the sweep: {lost}") if lost else None


def excerpt(lines: list[str], hits: list[int], bare: list[str] | None = None) -> str:
    """The matching lines with two lines before and three after each, runs apart marked `--` (first 10 hits);
    a hit in a traceback also keeps the traceback's exception line (what went wrong), however many frames
    lie between, the frames skipped marked `...`. `bare`: the lines as the program wrote them, when `lines`
    carry a prefix of their own (a Swarm task's name)."""
    bare = lines if bare is None else bare
    keep: dict[int, None] = {}
    for i in hits[:10]:
        keep.update(dict.fromkeys(range(max(0, i - 2), min(len(lines), i + 4))))
        end = decisive(bare, i)
        if end is not None:
            keep[end] = None
    shown: list[str] = []
    last = -1
    for i in sorted(keep):
        if shown and i > last + 1:
            shown.append("..." if _same_traceback(bare, last, i) else "--")
        shown.append(lines[i])
        last = i
    return "\n".join(shown)


def with_decisive(lines: list[str], hits: list[int]) -> list[int]:
    """`hits` and, for each one in a traceback, the traceback's exception line, in order."""
    found = set(hits)
    for i in hits:
        end = decisive(lines, i)
        if end is not None:
            found.add(end)
    return sorted(found)


def _same_traceback(lines: list[str], before: int, after: int) -> bool:
    """Whether the lines skipped between `before` and `after` are frames of one traceback."""
    return all(is_frame(line) or line.startswith((" ", "\t")) for line in lines[before + 1 : after])


def size(value: float) -> str:
    """Bytes as `docker stats` shows them: B, KiB, MiB, GiB, TiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def last_lines(logged: str, count: int = 20) -> list[str]:
    """The last `count` lines of a log, and the exception line of a traceback they cut."""
    lines = logged.splitlines()
    tail = list(range(max(0, len(lines) - count), len(lines)))
    return [lines[i] for i in with_decisive(lines, tail)]
