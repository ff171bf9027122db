"""Hostile local inputs are usage errors naming what to fix, never a hang, a crash or megabytes of output:
config strings with NUL, CR/LF or megabytes long; a runbook that is a FIFO, /dev/zero, a directory or too
big; symlink and directory loops in a checks folder (and a folder reached twice). And a runbook of thousands
of sections or of pathological inline Markdown parses."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_opscheck.runbook.parse import parse_runbook, plain
from pytest_opscheck.runbook.text import SIZE_LIMIT


def usage_error(pytester: pytest.Pytester, config: str, *args: str) -> str:
    """The one usage-error line of a sweep of `config` (exit 4, no traceback, a short output)."""
    (pytester.path / "opscheck.toml").write_text(config, encoding="utf-8")
    result = pytester.runpytest_subprocess("--opscheck", "-p", "no:cacheprovider", *args, timeout=60)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-2000:]
    assert "Traceback" not in output and "INTERNALERROR" not in output, output[-2000:]
    assert len(output) < 5_000, f"{len(output)} characters of output"
    lines = [line for line in result.stderr.str().splitlines() if line.startswith("ERROR: ")]
    assert len(lines) == 1, result.stderr.str()
    return lines[0]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("http://127.0.0.1:9/\\u0000x", "backend_url: holds a NUL byte"),
        ("http://127.0.0.1:9/x\\r\\nX-Injected: 1", "backend_url: holds a line break (CR or LF)"),
        ("http://127.0.0.1:9/" + "a" * 5_000_000, "backend_url: is 5000019 characters long, over the 4096"),
    ],
    ids=["NUL", "CRLF", "5 MB"],
)
def test_hostile_config_strings_are_usage_errors(pytester: pytest.Pytester, value: str, says: str) -> None:
    line = usage_error(pytester, f'backend_url = "{value}"\n')
    assert says in line


def test_hostile_strings_from_the_environment_are_usage_errors(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSCHECK_TEST_PATHS", "/health\r\nX-Injected: 1")
    line = usage_error(pytester, 'api_paths = ["/ok", "${OPSCHECK_TEST_PATHS}"]\n')
    assert "api_paths: holds a line break (CR or LF)" in line
    assert "X-Injected" not in line
    line = usage_error(pytester, "api_paths = [" + ", ".join(['"/a"'] * 5000) + "]\n")
    assert "api_paths: has 5000 items, over the 1000 a list may have" in line


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory", "too big"])
def test_a_runbook_that_is_not_a_small_regular_file_is_refused(pytester: pytest.Pytester, kind: str) -> None:
    target = pytester.path / "runbook.md"
    if kind == "fifo":
        os.mkfifo(target)  # nobody ever writes: reading it would wait forever
    elif kind == "dev-zero":
        target = Path("/dev/zero")
    elif kind == "directory":
        target.mkdir()
    else:
        target.write_text("# Runbook\n" + "x" * SIZE_LIMIT, encoding="utf-8")
    line = usage_error(pytester, f'runbook = "{target}"\n')
    says = {"fifo": "not a regular file", "dev-zero": "not a regular file", "directory": "is a directory",
            "too big": f"over the {SIZE_LIMIT} a runbook may have"}[kind]
    assert line.startswith(f"ERROR: runbook: {target}: ") and says in line


def test_a_runbook_of_thousands_of_sections_and_pathological_markdown_parses(tmp_path: Path) -> None:
    sections = [f"## Database connection errors {i}\n**Symptoms:** slow\n**Diagnosis:**\n- look\n"
                f"**Resolution:**\n1. restart\n" for i in range(1863)]
    hostile = ["*a " * 3000, "`" * 5000 + "x", "[" * 5000, "_a " * 3000, "![" * 3000 + "](", "**" + "a " * 3000]
    path = tmp_path / "runbook.md"
    path.write_text("# Runbook\n\n" + "".join(sections) + "".join(f"## {h}\ntext\n" for h in hostile))
    runbook = parse_runbook(path)
    assert len(runbook.sections) == 1 + 1863 + len(hostile)
    assert runbook.sections[1].title == "Database connection errors 0"
    assert runbook.sections[-1].anchor  # slugged through `plain` like every heading
    # Inline Markdown still reads as before on ordinary text.
    assert plain("**bold** and *it* and `code` [link](x) <b>t</b> _u_") == "bold and it and code link t u"
    assert plain("``a `b` c``, `x`") == "a `b` c, x"


def write_check(folder: Path, name: str = "team") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"test_{name}.py").write_text(
        'import pytest\n\n\n@pytest.mark.severity("P2")\n@pytest.mark.resolution("Fix it")\n'
        "def test_one():\n    pass\n"
    )


def test_symlink_loop_in_a_checks_folder_is_a_usage_error(pytester: pytest.Pytester) -> None:
    write_check(pytester.path / "ops")
    (pytester.path / "ops" / "loop").symlink_to("loop")
    line = usage_error(pytester, 'checks = ["ops"]\n')
    assert line == f"ERROR: {pytester.path / 'opscheck.toml'}: checks: {pytester.path / 'ops' / 'loop'} is a symlink " \
                   "loop: remove it"
    (pytester.path / "ops" / "loop").unlink()
    (pytester.path / "self").symlink_to("self")
    line = usage_error(pytester, 'checks = ["self"]\n')
    assert "checks: folder self is a symlink loop" in line


def test_directory_loop_in_a_checks_folder_is_a_usage_error(pytester: pytest.Pytester) -> None:
    write_check(pytester.path / "ops" / "db")
    (pytester.path / "ops" / "db" / "up").symlink_to("../..", target_is_directory=True)
    line = usage_error(pytester, 'checks = ["ops"]\n')
    assert "a folder above it (a directory loop): remove the link" in line


def test_a_checks_folder_reached_twice_is_collected_once_or_refused(pytester: pytest.Pytester) -> None:
    write_check(pytester.path / "ops" / "db")
    (pytester.path / "opscheck.toml").write_text('checks = ["ops", "ops/db", "./ops"]\n')
    result = pytester.runpytest_subprocess("--opscheck", "-p", "no:cacheprovider", "-k", "team.",
                                           "--opscheck-json", "out.json", timeout=60)
    ids = [r["id"] for r in json.loads((pytester.path / "out.json").read_text())["checks"]]
    assert ids == ["team.one"], result.stdout.str()[-2000:]
    (pytester.path / "alias").symlink_to("ops", target_is_directory=True)
    (pytester.path / "ops" / "again").symlink_to("db", target_is_directory=True)
    line = usage_error(pytester, 'checks = ["ops"]\n')
    assert "are the same folder: its checks would be collected twice" in line
