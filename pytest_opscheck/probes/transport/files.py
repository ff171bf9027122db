"""Local files the config names (a compose file, a runbook), read whole only when that is safe: a regular file
(not a FIFO that waits for a writer, not /dev/zero, not a directory), at most `limit` bytes, within `seconds`
(a hung file system cannot hold the sweep)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path


class Refused(Exception):
    """Why the file is not read, in a few words ("not a regular file (a pipe, ...)", "3000000 bytes, over ...")."""


def read_regular(path: Path, limit: int, seconds: float) -> bytes:
    """The bytes of the regular file at `path`; `Refused` when it is not one, is over `limit` bytes or cannot
    be read within `seconds`; FileNotFoundError when there is none; OSError when it cannot be read."""
    outcome: dict[str, bytes | BaseException] = {}

    def read() -> None:
        try:
            outcome["data"] = _read(path, limit)
        except Exception as exc:  # noqa: BLE001 - handed back to the caller's thread
            outcome["error"] = exc

    reader = threading.Thread(target=read, name="opscheck-file", daemon=True)
    reader.start()
    reader.join(seconds)
    if reader.is_alive():
        raise Refused(f"not read within {seconds:g} s (a file system that does not answer?)")
    error = outcome.get("error")
    if isinstance(error, BaseException):
        raise error
    data = outcome["data"]
    assert isinstance(data, bytes)
    return data


def _read(path: Path, limit: int) -> bytes:
    info = path.stat()
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(21, "Is a directory", str(path))
    if not stat.S_ISREG(info.st_mode):
        raise Refused("not a regular file (a pipe, a socket or a device)")
    if info.st_size > limit:
        raise Refused(f"{info.st_size} bytes, over the {limit} it may have")
    # O_NONBLOCK: should the path have become a FIFO since the stat, opening it does not wait for a writer.
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise Refused("not a regular file (a pipe, a socket or a device)")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise Refused(f"over the {limit} bytes it may have")
    return data
