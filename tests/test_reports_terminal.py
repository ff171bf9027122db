"""The terminal under --opscheck: the opscheck section is the report (no FAILURES section repeating its causes,
no progress line per file, no doubled parentheses), -v shows each check by id, --tb brings tracebacks back."""

from __future__ import annotations

import re

import pytest
from reports_incident import CONSEQUENCES, PLANTED, ROOTS, Sweep, run_sweep
from test_plugin import project, user_only


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    result = run_sweep(tmp_path_factory.mktemp("incident"))
    assert result.returncode == 1, result.stdout[-3000:]
    return result


def test_the_opscheck_section_is_the_only_account_of_the_failures(sweep: Sweep) -> None:
    out = sweep.stdout
    assert "= FAILURES =" not in out and "traceback entries are hidden" not in out
    assert not re.search(r"^FAILED \S+::", out, re.M), "the short summary does not list them again"
    assert "((" not in out and "))" not in out
    lines = out.splitlines()
    progress = [line for line in lines if re.fullmatch(r"[.sFE]+ *(\[\s*\d+%\])?", line.strip())]
    assert len(progress) == 1, "one line of progress letters"
    assert not [line for line in lines if re.match(r"^\S+\.py [.sFE]+", line)], "no progress line per file"
    section = lines[next(i for i, line in enumerate(lines) if "= opscheck =" in line) + 1 :]
    failed = [line for line in section if " FAILED " in line]
    assert [line.split(" FAILED ")[1].split(" ")[0] for line in failed] == ROOTS + CONSEQUENCES
    assert failed[0] == "P1 CRITICAL FAILED incident.db_down — respond immediately (within 15 min)"
    assert failed[-1] == "P2 HIGH     FAILED incident.login — caused by incident.db_down"
    assert "    cause: queue: connection refused by 127.0.0.1:5672" in section
    verdict = next(line for line in section if line.startswith("P1 CRITICAL:"))
    assert verdict.endswith("fix first: incident.db_down, incident.queue, incident.slow_page")
    assert PLANTED not in out


def test_verbose_shows_each_check_by_id_and_tb_brings_pytest_tracebacks_back(pytester: pytest.Pytester) -> None:
    project(pytester)
    verbose = pytester.runpytest(*user_only("-v"))
    verbose.stdout.fnmatch_lines_random([
        "ops/test_user.py::test_db_down FAILED P1 user.db_down*",
        "ops/test_user.py::test_slow_page FAILED P3 user.slow_page*",
        "ops/test_user.py::test_fine PASSED P2 user.fine*",
        "ops/test_user.py::test_gap SKIPPED P2 user.gap (not configured*",
    ])
    assert "= FAILURES =" not in verbose.stdout.str()
    traced = pytester.runpytest(*user_only("--tb=short", "-rf"))
    traced.stdout.fnmatch_lines(["*= FAILURES =*", "*assert 2.5 < 2.0*", "*= opscheck =*",
                                  "FAILED P3 user.slow_page ops/test_user.py::test_slow_page - *"])


def test_wait_lines_say_what_was_retried_how_often_and_when_it_was_ready() -> None:
    from pytest_opscheck.model import CheckRecord, summarize
    from pytest_opscheck.report.terminal import wait_lines

    records = [
        CheckRecord("backend.health", "a", "P1", "passed", 0.1, "", "", attempts=5, ready_after=12.4),
        CheckRecord("db.reachable", "b", "P1", "passed", 0.1, "", "", attempts=1, ready_after=0.2),
        CheckRecord("auth.login", "c", "P2", "failed", 0.1, "auth: refused", "",
                    gave_up="service backend crash-looping (restart count 3)"),
        CheckRecord("ws.ping", "d", "P2", "failed", 0.1, "ws: refused", "", attempts=9),
    ]
    assert wait_lines(summarize(records), 60) == [
        "wait (60 s): retried 3 checks",
        "  ready: backend.health after 12.4 s (5 attempts)",
        "  not retried: auth.login: service backend crash-looping (restart count 3) (1 attempt)",
        "  still failing: ws.ping when the wait ended (9 attempts)",
    ]
    assert wait_lines(summarize(records[1:2]), 60) == ["wait (60 s): no check needed a retry"]
    assert wait_lines(summarize(records), None) == []
