"""The files a sweep reads and writes: checked before the first probe, written atomically at the end.

A path that cannot be written is a usage error naming the option and the path, before any target opens;
a write that still fails at the end (the folder went away during the sweep) is kept as one line that the
terminal prints beside the verdict, never a traceback in its place.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
import tempfile
from pathlib import Path

import pytest

from ..config.settings import config_upward, find_config_file

# The lines of the writes that failed at the end, for the terminal's opscheck section.
WRITE_ERRORS = pytest.StashKey[list[str]]()
# Our own files: the folder must exist. pytest's junitxml and pytest-html create missing folders themselves.
OWN_OUTPUTS = ("opscheck_json", "opscheck_prometheus", "opscheck_postmortem")
PYTEST_OUTPUTS = (("xmlpath", "--junitxml"), ("htmlpath", "--html"))
DEFAULT_HTML = "opscheck-report.html"  # the HTML report of a sweep, in the current folder, unless --html moves it
# Options pytest does not know yet when it settles its rootdir and ini file (a plugin's options load after that
# first look): their value, written as a word of its own, is a free argument to that look, and an existing file
# there moves the rootdir to the common folder of it and of where pytest runs. `--opt=PATH` is one word: never.
LATE_PATH_OPTIONS = (
    "--opscheck-config", "--opscheck-json", "--opscheck-prometheus", "--opscheck-postmortem", "--opscheck-state",
    "--html", "--css",
)


def option_name(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _folder_problem(folder: Path, creates_folders: bool) -> str | None:
    """Why no file can be created in `folder`, None when one can (tried for real: root ignores mode bits)."""
    if creates_folders:
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
    if not folder.exists():
        return f"folder {folder} does not exist: create it first"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return f"cannot write in {folder}: {exc.strerror or exc}"
    return None


def output_problem(path: str, creates_folders: bool = False) -> str | None:
    """Why `path` cannot be written as a report file, None when it can."""
    target = Path(os.path.expanduser(os.path.expandvars(path)))
    if not target.name or path.endswith(("/", os.sep)):
        return "expected a file name, got a folder"
    try:
        mode = target.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None  # the folder says why
    except OSError as exc:
        return f"cannot use it: {exc.strerror or exc}"
    if mode is not None and not stat.S_ISREG(mode):
        return f"is {_kind(mode)}, not a file"
    return _folder_problem(target.absolute().parent, creates_folders)


def config_problem(path: str) -> str | None:
    """Why the ``--opscheck-config`` file cannot be read as TOML, None when it can (or does not exist)."""
    target = Path(path)
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return None  # the config loader says "no such file"
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    if not stat.S_ISREG(mode):
        return f"is {_kind(mode)}, expected a TOML file"
    if not os.access(target, os.R_OK):
        return "cannot read it: permission denied"
    return None


def taken_for_paths(args: list[str] | tuple[str, ...], invocation_dir: Path) -> list[tuple[str, str]]:
    """(option, value) of each report or config option whose value pytest's first look at the command line took
    for a test path: written as a word of its own after the option, naming a file or folder that exists."""
    taken = []
    for flag, value in itertools.pairwise(args):
        if flag not in LATE_PATH_OPTIONS or not value or value.startswith("-"):
            continue
        if (invocation_dir / os.path.expanduser(value.partition("::")[0])).exists():
            taken.append((flag, value))
    return taken


# The option value that moved pytest's rootdir, when the config had to be found from where pytest runs.
MOVED_BY = pytest.StashKey[tuple[str, str]]()


def settle_config(config: pytest.Config) -> None:
    """The config found from where the user runs, never from an option's value: when pytest's first look took
    a report or config path outside the folder it runs in for a test path (``--html /var/lib/opscheck/report.html``
    once that file exists) its rootdir moved away; the move is noted for the terminal, and unless the config was
    given, it is the first one in the folder pytest runs in or above it, as if given by ``--opscheck-config``.
    --rootdir and -c settle pytest's rootdir as the user says."""
    if config.getoption("rootdir", None) or config.getoption("inifilename", None):
        return
    params = config.invocation_params
    here = Path(params.dir).resolve()
    outside = [
        (flag, value) for flag, value in taken_for_paths(list(params.args), here)
        if not (here / os.path.expanduser(value)).resolve().is_relative_to(here)
    ]
    if not outside or Path(config.rootpath).resolve() == here:
        return
    config.stash[MOVED_BY] = outside[0]
    if config.getoption("opscheck_config") or find_config_file(Path(config.rootpath), None) is not None:
        return
    flag, value = outside[0]
    found = config_upward(here)
    if found is None:
        raise pytest.UsageError(
            f"no configuration found in {here} or above: add [tool.opscheck] to pyproject.toml or write "
            f"opscheck.toml (pytest's rootdir is {config.rootpath} because it took {flag} {value} for a test "
            f"path: write {flag}={value})"
        )
    config.option.opscheck_config = str(found)


def moved_rootdir_line(config: pytest.Config) -> str | None:
    """The terminal's note when a report or config path moved pytest's rootdir (its ini file and cache went with
    it, and the config is looked up from where pytest runs)."""
    moved = config.stash.get(MOVED_BY, None)
    if moved is None:
        return None
    flag, value = moved
    return (f"note: pytest took the {flag} file for a test path and moved its rootdir to {config.rootpath}; "
            f"write {flag}={value}")


def check_paths(config: pytest.Config) -> None:
    """Every path of the command line, before the first probe: a usage error names the option and the path."""
    settle_config(config)
    explicit = config.getoption("opscheck_config")
    if explicit:
        problem = config_problem(explicit)
        if problem:
            raise pytest.UsageError(f"--opscheck-config {explicit}: {problem}")
    outputs: list[tuple[str, str, bool]] = []
    for dest in OWN_OUTPUTS:
        value = config.getoption(dest)
        if value:
            outputs.append((option_name(dest), value, False))
    for dest, flag in PYTEST_OUTPUTS:
        value = config.getoption(dest, None)
        if value:
            outputs.append((flag, value, True))
    if not config.option.collectonly and config.pluginmanager.hasplugin("html") and not config.getoption("htmlpath"):
        problem = output_problem(DEFAULT_HTML)
        if problem:
            raise pytest.UsageError(
                f"the HTML report {DEFAULT_HTML} (written by default here): {problem}; move it with --html PATH"
            )
    seen: dict[Path, str] = {}
    for flag, value, creates in outputs:
        problem = output_problem(value, creates)
        if problem:
            raise pytest.UsageError(f"{flag} {value}: {problem}")
        resolved = Path(os.path.expanduser(os.path.expandvars(value))).absolute()
        if resolved in seen:
            raise pytest.UsageError(f"{flag} {value}: {seen[resolved]} writes the same file: give each its own")
        seen[resolved] = flag
    check_strict(config)


def check_strict(config: pytest.Config) -> None:
    """``--opscheck-strict``: a config value whose ``${VAR}`` is unset is a usage error naming the key and the
    variable, before anything opens (without it the key is unconfigured and its checks are skipped, counted)."""
    if not config.getoption("opscheck_strict", None):
        return
    from ..config.settings import ConfigError, load_settings

    try:
        load_settings(Path(config.rootpath), config.getoption("opscheck_config"), config.getoption("opscheck_env"),
                      config.getoption("opscheck_timeout"), strict=True)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def write_atomically(path: str | Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder and a rename: a reader (node_exporter,
    a CI upload) sees the old file or the new one, never half of one. An existing file keeps its mode, a new
    one is 0644."""
    target = Path(path)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        try:
            mode = stat.S_IMODE(target.stat().st_mode)
        except FileNotFoundError:
            mode = 0o644  # readable by a collector running as another user, as a plain write would be
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_report(config: pytest.Config, flag: str, path: str | Path, text: str) -> bool:
    """Write one report file at the end of the sweep; a failure is kept for the terminal, not raised."""
    try:
        write_atomically(path, text)
    except OSError as exc:
        config.stash.setdefault(WRITE_ERRORS, []).append(
            f"{flag} {path}: not written: {exc.strerror or exc}"
        )
        return False
    return True


def failed_write(config: pytest.Config, exc: OSError) -> None:
    """A report that pytest's junitxml or pytest-html could not write, named by its option."""
    where = Path(os.fspath(exc.filename)).absolute() if exc.filename else None
    flag, shown = "a report file", str(exc.filename or "")
    for dest, name in PYTEST_OUTPUTS:
        value = config.getoption(dest, None)
        if value and where is not None and Path(os.path.expanduser(os.path.expandvars(value))).absolute() == where:
            flag, shown = name, value
    config.stash.setdefault(WRITE_ERRORS, []).append(f"{flag} {shown}: not written: {exc.strerror or exc}")


def write_errors(config: pytest.Config) -> list[str]:
    """The writes that failed at the end, by option."""
    errors: list[str] = config.stash.get(WRITE_ERRORS, [])
    return sorted(errors)
