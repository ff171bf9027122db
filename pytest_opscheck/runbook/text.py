"""The runbook's text, bounded: the file read whole only when it is a regular file under `SIZE_LIMIT`, within
`READ_SECONDS` (a FIFO, /dev/zero or a hung file system cannot hold the sweep), and inline Markdown turned into
plain text in time linear in its length (no pattern retries a long stretch from every opening mark)."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from ..probes.transport.files import Refused, read_regular

# A runbook is read whole: a regular file of at most this size, within `READ_SECONDS`.
SIZE_LIMIT = 1_000_000
READ_SECONDS = 5.0
# Inline Markdown, matched in linear time: no pattern retries a long stretch from every opening mark.
_LINK = re.compile(r"!?\[([^\[\]]*)\]\([^()]*\)")
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_TICKS = re.compile(r"`+")
_STRONG = re.compile(r"(\*\*|__)(.{1,500}?)\1")
_STAR = re.compile(r"(?<![\w*])\*(?!\s)(.{1,500}?)(?<!\s)\*(?![\w*])")
_UNDERSCORE = re.compile(r"(?<!\w)_(?!\s)(.{1,500}?)(?<!\s)_(?!\w)")


class Unreadable(Exception):
    """The runbook file cannot be read as one; the message names the path and why."""


@functools.lru_cache(maxsize=65_536)
def plain(markdown: str) -> str:
    """Inline Markdown as plain text: links, images, code spans, emphasis and HTML tags unwrapped (in time
    linear in the text; an emphasis spans at most 500 characters)."""
    text = _TAG.sub("", _LINK.sub(r"\1", markdown))
    text = _code_spans(text)
    text = _STRONG.sub(r"\2", text)
    text = _STAR.sub(r"\1", text)
    return _UNDERSCORE.sub(r"\1", text)


def _code_spans(text: str) -> str:
    """`text` with each code span's backticks dropped: a run of backticks closed by the next run of the same
    length (CommonMark), found in one pass over the runs."""
    runs = [(m.start(), m.end()) for m in _TICKS.finditer(text)]
    if len(runs) < 2:
        return text
    following: list[int | None] = [None] * len(runs)
    last: dict[int, int] = {}
    for index in range(len(runs) - 1, -1, -1):
        width = runs[index][1] - runs[index][0]
        following[index] = last.get(width)
        last[width] = index
    parts, at, index = [], 0, 0
    while index < len(runs):
        close = following[index]
        start, end = runs[index]
        if close is None or runs[close][0] == end:  # unclosed, or nothing inside: literal backticks
            index += 1
            continue
        parts += [text[at:start], text[end : runs[close][0]]]
        at = runs[close][1]
        index = close + 1
    parts.append(text[at:])
    return "".join(parts)


def read_bytes(path: Path, limit: int = SIZE_LIMIT, seconds: float = READ_SECONDS) -> bytes:
    """The bytes of the regular file at `path` (at most `limit`), read within `seconds`: a FIFO, a device
    (/dev/zero), a directory or a file too big is refused, and a file system that stops answering is too."""
    try:
        return read_regular(path, limit, seconds)
    except FileNotFoundError:
        raise Unreadable(f"{path}: runbook not found (check `runbook` in the config)") from None
    except IsADirectoryError:
        raise Unreadable(f"{path}: is a directory, not a runbook file") from None
    except Refused as exc:
        reason = str(exc).replace(" it may have", " a runbook may have")
        hint = ": point runbook at a file" if "regular" in reason else ""
        raise Unreadable(f"{path}: {reason}{hint}") from None
    except OSError as exc:
        raise Unreadable(f"{path}: cannot read the runbook: {exc.strerror or exc}") from None
