"""The state file: this sweep's fingerprint and that of the last sweep whose verdict was OK, kept between sweeps.

JSON with a magic field (`"pytest-opscheck-state"`) and a version: any other file at the path is refused, never
overwritten. Written atomically (a temp file in the same folder, fsync, then rename), under an exclusive lock on
a sidecar `.lock` file held for the read-modify-write, so two sweeps at once leave one whole state (the later
writer's); when the lock cannot be had within its deadline the write goes ahead anyway, still atomic
(last writer wins). It holds names, image references, revisions, certificate serials and salted hashes; the salt
is random per file and lives in it. Never a secret value.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fingerprint import Fingerprint

MAGIC = "pytest-opscheck-state"
VERSION = 1
LOCK_SECONDS = 10.0


class StateError(Exception):
    """The state file cannot be used; the message is one line saying what to do."""


@dataclass
class State:
    """What the file holds: its salt, the last sweep's fingerprint and the last green one (and whether that one was
    recorded on purpose, by --opscheck-baseline)."""

    salt: str = field(default_factory=lambda: secrets.token_hex(16))
    last: Fingerprint | None = None
    last_green: Fingerprint | None = None
    baseline: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MAGIC,
            "version": VERSION,
            "salt": self.salt,
            "baseline": self.baseline,
            "last": self.last.to_dict() if self.last else None,
            # After a green sweep both are one fingerprint: written once.
            "last_green": ({"same_as_last": True} if self.last_green is self.last and self.last is not None
                           else self.last_green.to_dict() if self.last_green else None),
        }


def read_state(path: Path) -> State | None:
    """The state at `path`, None when there is no file yet; StateError when the file is not this product's."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"cannot read it ({getattr(exc, 'strerror', None) or type(exc).__name__})") from None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("format") != MAGIC:
        raise StateError("not a pytest-opscheck state file: point --opscheck-state at another path (this file is "
                         "left as it is)")
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise StateError(f"written by a newer pytest-opscheck (state version {version}, this one reads {VERSION}): "
                         "upgrade pytest-opscheck or point --opscheck-state at another path")
    try:
        return State(
            salt=str(data["salt"]),
            last=Fingerprint.from_dict(data["last"]) if data.get("last") else None,
            last_green=Fingerprint.from_dict(data["last_green"]) if data.get("last_green") else None,
            baseline=bool(data.get("baseline")),
        ) if not (data.get("last_green") or {}).get("same_as_last") else _same(data)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise StateError("a pytest-opscheck state file that is damaged: remove it (the next sweep starts afresh)") \
            from None


def _same(data: dict[str, Any]) -> State:
    """A state whose last sweep was its last green one."""
    last = Fingerprint.from_dict(data["last"])
    return State(salt=str(data["salt"]), last=last, last_green=last, baseline=bool(data.get("baseline")))


def write_state(path: Path, state: State) -> None:
    """Write `state` to `path` atomically: a temp file beside it, flushed to disk, renamed over it (readable by
    its owner only: the hashes are salted, but the file is nobody else's business)."""
    data = json.dumps(state.to_dict(), separators=(",", ":"))  # one line: the C encoder, a tenth of the time
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


@contextlib.contextmanager
def locked(path: Path, seconds: float = LOCK_SECONDS) -> Iterator[bool]:
    """Hold an exclusive lock on `path`'s sidecar `.lock` for the block; yields whether it was had within `seconds`
    (polled with a growing pause, never blocking for good). Without `fcntl` (Windows), no lock: last writer wins."""
    try:
        import fcntl
    except ImportError:
        yield False
        return
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + seconds
        pause = 0.01
        have = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                have = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(pause * 2, 0.2)
        try:
            yield have
        finally:
            if have:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
