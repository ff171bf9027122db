"""The checks folders, walked once before pytest collects them: a symlink loop, a link back to a folder above
it, or two ways to reach the same folder would make pytest crash or collect a check many times, so each is a
usage error naming the folder. Folders pytest does not collect (``.*``, ``node_modules``, …) are not walked."""

from __future__ import annotations

import errno
import os
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

# pytest's default `norecursedirs`, and its own cache folder.
NOT_COLLECTED = ("*.egg", ".*", "_darcs", "build", "CVS", "dist", "node_modules", "venv", "{arch}", "__pycache__")
MAX_FOLDERS = 10_000


def builtin_checks_dir() -> Path:
    """The folder of the built-in checks, installed as ``pytest_opscheck.checks``."""
    import importlib.util

    spec = importlib.util.find_spec("pytest_opscheck.checks")
    assert spec is not None and spec.submodule_search_locations is not None
    return Path(next(iter(spec.submodule_search_locations)))


class FolderError(Exception):
    """A checks folder that cannot be collected once; the message names the folder and what to do."""


def distinct_folders(roots: list[Path]) -> list[Path]:
    """`roots` without those inside (or equal to) one before them, each walked for loops and folders reached
    twice (raises `FolderError`)."""
    kept: list[tuple[Path, Path]] = []
    for root in roots:
        real = Path(os.path.realpath(root))
        if any(real == other or real.is_relative_to(other) for _, other in kept):
            continue
        kept.append((root, real))
    seen: dict[tuple[int, int], Path] = {}
    for root, _ in kept:
        _walk(root, seen)
    return [root for root, _ in kept]


def _walk(root: Path, seen: dict[tuple[int, int], Path]) -> None:
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            info = folder.stat()
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise FolderError(f"{folder} is a symlink loop: remove it") from None
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen:
            first = seen[key]
            if first == root or folder.is_relative_to(first):
                raise FolderError(f"{folder} links back to {first}, a folder above it (a directory loop): remove "
                                  "the link")
            raise FolderError(f"{folder} and {first} are the same folder: its checks would be collected twice; "
                              "remove one of them")
        seen[key] = folder
        if len(seen) > MAX_FOLDERS:
            raise FolderError(f"{root} holds more than {MAX_FOLDERS} folders: point checks at the checks alone")
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if any(fnmatch(entry.name, pattern) for pattern in NOT_COLLECTED):
                continue
            try:
                is_dir = entry.is_dir()  # follows symlinks, as pytest's collection does
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise FolderError(f"{entry.path} is a symlink loop: remove it") from None
                continue
            if entry.is_symlink() and not is_dir:
                try:
                    os.stat(entry.path)
                except OSError as exc:
                    if exc.errno == errno.ELOOP:
                        raise FolderError(f"{entry.path} is a symlink loop: remove it") from None
            if is_dir:
                pending.append(Path(entry.path))


def configured_folders(rootdir: Path) -> list[str]:
    """The checks folders the rootdir's config names (absolute, as text), read without the rest of the config
    (a plain `pytest` run must not pay for it, nor fail on it): [] when there is no config or it is unreadable."""
    import tomllib

    for name, table_of in (("pyproject.toml", _tool_table), ("opscheck.toml", lambda t: t)):
        path = rootdir / name
        try:
            with path.open("rb") as handle:
                table = table_of(tomllib.load(handle))
        except (OSError, ValueError):
            continue
        if table is None:
            continue
        folders = table.get("checks", [])
        if not isinstance(folders, list):
            return []
        return [os.path.realpath(path.parent / f) for f in folders if isinstance(f, str) and "${" not in f]
    return []


def _tool_table(table: dict[str, object]) -> dict[str, object] | None:
    tool = table.get("tool")
    found = tool.get("opscheck") if isinstance(tool, dict) else None
    return found if isinstance(found, dict) else None


class ChecksFoldersAside:
    """Without ``--opscheck``: pytest does not collect the configured checks folders (their checks need the
    sweep's fixtures). The config's `checks` key is read once, on the first directory pytest looks at."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.folders: list[str] | None = None

    def pytest_ignore_collect(self, collection_path: Path) -> bool | None:
        if self.folders is None:
            self.folders = configured_folders(Path(self.config.rootpath))
        if os.path.realpath(collection_path) in self.folders:
            return True
        return None
