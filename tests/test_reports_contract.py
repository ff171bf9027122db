"""The outside contract of a sweep's reports (issue 16): the JSON file as the README documents it, exit 5 when
nothing was checked, every output path checked before the first probe, option errors naming the option, and
severity markers selecting in either case. Run as pytest runs it (pytester), against a real listener."""

from __future__ import annotations

import json
import re
import socket
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_plugin import PLANTED, USER_CHECKS, project, user_only

README = Path(__file__).parents[1] / "README.md"


def readme_table(marker: str) -> list[list[str]]:
    """The rows of the README table between `<!-- marker:start -->` and `<!-- marker:end -->`, cells unquoted."""
    text = README.read_text()
    block = text[text.index(f"<!-- {marker}:start -->") : text.index(f"<!-- {marker}:end -->")]
    rows = [line for line in block.splitlines() if line.startswith("| ")][2:]
    return [[cell.strip().strip("`") for cell in row.strip("|").split(" | ")] for row in rows]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A real TCP listener on 127.0.0.1 that nobody should connect to: the "backend" of a refused sweep."""
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    yield server
    server.close()


def connections(server: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = server.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_json_file_is_what_the_readme_documents(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCHECK_PASSWORD", PLANTED)
    project(pytester, 'auth = { login_path = "/login", password = "${OPSCHECK_PASSWORD}" }\n')
    result = pytester.runpytest(*user_only("--opscheck-json", "out.json"))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    text = (pytester.path / "out.json").read_text()
    data = json.loads(text)
    assert list(data) == ["verdict", "last_green", "changes", "checks"]
    assert (data["last_green"], data["changes"]) == (None, []), "no state kept (no cache): nothing to compare"
    assert data["verdict"] == next(line for line in result.stdout.lines if line.startswith("P1 CRITICAL:"))
    documented = readme_table("json-fields")
    fields = [row[0] for row in documented]
    types = {"string": str, "number": float, "integer": int, "object": dict, "null": type(None)}
    for record in data["checks"]:
        assert list(record) == fields, "a record's fields, in order, are the README's"
        for name, kind, _ in documented:
            allowed = tuple(types[k] for k in re.findall(r"string|number|integer|object|null", kind))
            value = record[name]
            assert isinstance(value, allowed) or (float in allowed and isinstance(value, int)), (name, value)
    assert [c["severity"] for c in data["checks"]] == sorted(c["severity"] for c in data["checks"])
    by_id = {c["id"]: c for c in data["checks"]}
    assert by_id["user.db_down"]["nodeid"] == "ops/test_user.py::test_db_down"
    assert (by_id["user.db_down"]["attempts"], by_id["user.db_down"]["ready_after"]) == (1, None)
    assert by_id["user.gap"]["message"] == "not configured: smtp.host"
    assert PLANTED not in text


def test_no_verdict_is_exit_5_whether_everything_skipped_or_nothing_selected(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPSCHECK_UNSET_HOST", "OPSCHECK_UNSET_PW"):
        monkeypatch.delenv(name, raising=False)
    # The reported case: every ${VAR} of the config unset, all built-in checks skipped, no checks folder.
    pytester.makefile(
        ".toml",
        opscheck='backend_url = "http://${OPSCHECK_UNSET_HOST}:8000"\n'
        'database_url = "postgresql://app:${OPSCHECK_UNSET_PW}@127.0.0.1:5432/app"\n',
    )
    skipped = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "--opscheck-json", "out.json")
    assert skipped.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    skipped.stdout.fnmatch_lines(
        ["NO VERDICT: no check ran (* skipped*)", "nothing was checked: exit status 5 (a gate never passes on nothing)"]
    )
    assert json.loads((pytester.path / "out.json").read_text())["verdict"].startswith("NO VERDICT")
    # Nothing selected, with the hint that -m P1 / -m p1 and -k are the ways to select.
    none = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-m", "p5")
    assert none.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    none.stdout.fnmatch_lines(["NO VERDICT: no check selected (* deselected by -m 'p5'): exit status 5. *-m P1*"])
    # --collect-only and --opscheck-coverage check nothing on purpose: not a gate, no exit 5.
    listing = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "--collect-only", "-q")
    assert listing.ret == pytest.ExitCode.OK
    assert "NO VERDICT" not in listing.stdout.str()


def test_severity_markers_select_in_either_case(pytester: pytest.Pytester) -> None:
    project(pytester)
    upper = pytester.runpytest(*user_only("-m", "P1 or p3", "--collect-only", "-q", "--strict-markers"))
    assert upper.ret == pytest.ExitCode.OK
    assert [line for line in upper.stdout.lines if "::" in line] == [
        "ops/test_user.py::test_db_down", "ops/test_user.py::test_slow_page"
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--opscheck-timeout", "0"), "ERROR: --opscheck-timeout 0: expected a number of seconds above 0, such as 30"),
        (("--opscheck-timeout=-3",), "ERROR: --opscheck-timeout -3: expected a number of seconds above 0, such as 30"),
        (("--opscheck-wait", "soon"), "ERROR: --opscheck-wait soon: expected a number of seconds, such as 30"),
        (("--opscheck-wait", "inf"), "ERROR: --opscheck-wait inf: expected a number of seconds above 0, such as 30"),
        (("--opscheck-config", "/dev/zero"), "ERROR: --opscheck-config /dev/zero: is a device, expected a TOML file"),
        (("--opscheck-config", "."), "ERROR: --opscheck-config .: is a folder, expected a TOML file"),
        (("--opscheck-config", "nope.toml"), "ERROR: --opscheck-config nope.toml: no such file"),
    ],
)
def test_option_errors_name_the_option_and_what_is_wrong(
    pytester: pytest.Pytester, args: tuple[str, ...], expected: str
) -> None:
    project(pytester)
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ("option", "path", "expected"),
    [
        ("--opscheck-json", "/nonexistent/dir/x.json", "folder /nonexistent/dir does not exist: create it first"),
        ("--opscheck-prometheus", "out", "is a folder, not a file"),
        ("--opscheck-postmortem", "out/", "expected a file name, got a folder"),
        ("--opscheck-json", "/proc/self/opscheck.json", "cannot write in /proc/self: *"),
        ("--opscheck-prometheus", "opscheck.toml/x.prom", "*opscheck.toml is not a folder"),
        ("--junitxml", "opscheck.toml/junit.xml", "*opscheck.toml is not a folder"),
        ("--html", "out", "is a folder, not a file"),
        ("--opscheck-json", "/dev/null", "is a device, not a file"),
    ],
)
def test_an_output_path_that_cannot_be_written_is_a_usage_error_before_the_first_probe(
    pytester: pytest.Pytester, listener: socket.socket, option: str, path: str, expected: str
) -> None:
    port = listener.getsockname()[1]
    project(pytester, f'backend_url = "http://127.0.0.1:{port}"\n', USER_CHECKS + textwrap.dedent(
        """
        @pytest.mark.severity("P1")
        def test_marker():
            open("a-check-ran", "w").close()
        """
    ))
    pytester.mkdir("out")
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", f"{option}={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {option} {path}: {expected}"])
    assert not (pytester.path / "a-check-ran").exists()
    assert connections(listener) == 0, "a probe reached the backend before the usage error"
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_two_reports_on_one_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    project(pytester)
    result = pytester.runpytest(*user_only("--opscheck-json", "same.out", "--opscheck-prometheus", "./same.out"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --opscheck-prometheus ./same.out: --opscheck-json writes the same file*"])


def test_a_write_failing_at_the_end_keeps_the_verdict(pytester: pytest.Pytester) -> None:
    """The folder goes away during the sweep (a plain file takes its name, so no writer can make it again): the
    files are not written, each failed write is named by its option, the verdict and exit status stay."""
    project(pytester, "", USER_CHECKS + textwrap.dedent(
        """
        import shutil
        from pathlib import Path

        @pytest.mark.severity("P4")
        def test_cleanup_removes_the_reports_folder():
            shutil.rmtree("reports")
            Path("reports").write_text("not a folder")
        """
    ))
    pytester.mkdir("reports")
    # In a process of its own: the writes at the end meet only this sweep's state.
    result = pytester.runpytest_subprocess(*user_only(
        "--opscheck-json", "reports/out.json", "--opscheck-prometheus", "reports/opscheck.prom",
        "--opscheck-postmortem", "reports/pm.md", "--html", "reports/report.html",
    ))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "report not written: --html reports/report.html: not written: *",
        "report not written: --opscheck-json reports/out.json: not written: Not a directory",
        "report not written: --opscheck-postmortem reports/pm.md: not written: Not a directory",
        "report not written: --opscheck-prometheus reports/opscheck.prom: not written: Not a directory",
        "P1 CRITICAL: 1 check failing (+1 lower) — respond immediately (within 15 min)",
    ])
    assert "INTERNALERROR" not in result.stdout.str() and "Traceback" not in result.stdout.str()
    assert (pytester.path / "reports").read_text() == "not a folder"


def test_report_files_replace_the_old_ones_whole_and_stay_readable(pytester: pytest.Pytester) -> None:
    project(pytester)
    old = pytester.path / "out.json"
    old.write_text("old")
    old.chmod(0o600)
    inode = old.stat().st_ino
    pytester.runpytest(*user_only("--opscheck-json", "out.json", "--opscheck-prometheus", "fresh.prom"))
    assert json.loads(old.read_text())["checks"]
    assert old.stat().st_ino != inode, "replaced by a rename, not rewritten in place"
    assert stat.S_IMODE(old.stat().st_mode) == 0o600, "an existing file keeps its mode"
    assert stat.S_IMODE((pytester.path / "fresh.prom").stat().st_mode) == 0o644, "node_exporter must read it"
    assert [p.name for p in pytester.path.iterdir() if p.name.endswith(".tmp")] == []


def test_the_default_html_report_in_a_folder_that_cannot_be_written_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """Run from a folder nothing can be created in: the default report's path is refused before any probe."""
    project(pytester)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--opscheck", "-p", "no:cacheprovider", "--rootdir", str(pytester.path),
         "--opscheck-config", str(pytester.path / "opscheck.toml")],
        cwd="/proc/self", capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.startswith("ERROR: the HTML report opscheck-report.html (written by default here): cannot ")
    assert "move it with --html PATH" in result.stderr and "Traceback" not in result.stderr
