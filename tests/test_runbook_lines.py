"""Coverage by line: every command of every Diagnosis block of both seed runbooks is automated by a check (or
an evidence step) or listed for people with the reason; `--opscheck-coverage` prints the listing."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from pytest_opscheck.catalogue_lines import RunbookLine, coverage_by_line, matches, section_lines, verdict
from pytest_opscheck.declare import evaluate
from pytest_opscheck.model import CheckMeta
from pytest_opscheck.runbook.parse import diagnosis_sections, parse_runbook

ROOT = Path(__file__).parents[1]
DATA = ROOT / "tests" / "data" / "runbooks"
SHARED = ROOT.parent / "shared" / "runbooks"
FASTAPI, NODE = DATA / "000_903c53a40e61f8c6.txt", DATA / "003_3066b0f70d06933e.txt"


def builtin_metas() -> list[CheckMeta]:
    """Every built-in check's declaration, read off its markers as the sweep reads them."""
    metas = []
    for path in sorted((ROOT / "checks").glob("test_*.py")):
        module = importlib.import_module(f"pytest_opscheck.checks.{path.stem}")
        for name, func in vars(module).items():
            if name.startswith("test_") and callable(func):
                marks = {mark.name: mark for mark in getattr(func, "pytestmark", [])}
                metas.append(evaluate(path, name, marks.get, func.__doc__))
    return metas


def runbooks() -> list[Path]:
    """Both seed runbooks, from the tests' data and, where it is beside the project, ../shared/runbooks."""
    found = [FASTAPI, NODE]
    return found + sorted(SHARED.glob("*.txt")) if SHARED.is_dir() else found


@pytest.mark.parametrize("path", runbooks(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_diagnosis_line_is_automated_or_for_people_with_a_reason(path: Path) -> None:
    metas = builtin_metas()
    book = parse_runbook(path)
    diagnosis = [line for section in diagnosis_sections(book) for line in section_lines(section)
                 if line.part == "diagnosis" and not line.header]
    assert len(diagnosis) >= 10
    for line in diagnosis:
        judged = verdict(line, metas)
        assert judged.status in ("automated", "manual"), judged.format()
    assert coverage_by_line(book, metas)[-1].endswith(", 0 not automated")


def test_the_lines_of_the_issue_are_automated_by_their_checks() -> None:
    metas = builtin_metas()
    listing = "\n".join(coverage_by_line(parse_runbook(FASTAPI), metas) + coverage_by_line(parse_runbook(NODE), metas))
    expected = [
        "    free -m  -> host.memory_free",
        "    docker compose ps  # Check container status  -> stack.services_running",
        "    cat .env  # Verify .env file  -> stack.config_current, stack.required_env",
        "    docker compose logs backend --tail=100 -f  # Check backend logs  -> stack.logs_clean, stack.no_crash_loop",
        "    Rollback if recent deployment  -> evidence of every failing stack and backend check: when each container "
        "was created, from which image",
        "    cd backend && npx prisma migrate deploy  # Add missing indexes  -> db.missing_indexes",
        "    docker-compose stop postgres  # If data corruption suspected  -> db.no_corruption",
        "    dmesg | grep -i oom  # Check for OOM  -> stack.no_oom_kill",
        "    View error details in Sentry dashboard  -> manual: a human step: read the error tracker's dashboard",
        "    Acknowledge the incident  -> manual: a human step: telling people",
        "    docker compose restart db  # Restart database  -> manual: a fix, applied by hand: checks only read",
    ]
    for line in expected:
        assert line in listing.splitlines(), line
    grep_ws = next(line for line in listing.splitlines() if 'grep -i "websocket\\|socket"' in line)
    assert "ws.handshake" in grep_ws and "ws.ping" in grep_ws and "stack.logs_clean" in grep_ws
    grep_token = next(line for line in listing.splitlines() if 'grep -i "token"' in line)
    assert "auth.login" in grep_token and "auth.token_accepted" in grep_token


def test_commands_are_read_as_a_shell_reads_them() -> None:
    book = parse_runbook(NODE)
    slow = next(s for s in diagnosis_sections(book) if s.anchor == "p3-slow-api-responses")
    lines = section_lines(slow)
    psql = next(line for line in lines if "pg_stat_statements" in line.text)
    assert psql.text.startswith('docker-compose exec postgres psql -U postgres -c " SELECT query, mean_time, calls')
    assert psql.text.endswith('LIMIT 10;"') and psql.note == "Check database query times"
    auth = next(s for s in diagnosis_sections(book) if s.anchor == "p2-authentication-failure")
    curl = next(line for line in section_lines(auth) if line.text.startswith("curl -X POST"))
    assert curl.text.endswith("""-d '{"username":"test","password":"test"}'""")
    outage = next(s for s in diagnosis_sections(book) if s.anchor == "p1-service-outage")
    headers = [line.text for line in section_lines(outage) if line.header]
    assert headers == ["Verify the outage scope", "Check logs", "Check resources", "Check network"]
    removed = next(line for line in section_lines(outage) if line.text.startswith("docker volume rm"))
    assert removed.note == "WARNING: Data loss" and removed.part == "resolution"


def test_patterns_match_whole_words_from_the_start() -> None:
    ps = RunbookLine("diagnosis", "docker-compose ps db")
    assert matches("docker compose ps", ps) and matches("DOCKER COMPOSE PS DB", ps)
    assert not matches("docker compose p", ps)
    assert matches("*check for oom*", RunbookLine("resolution", "dmesg | grep -i oom", "Check for OOM"))
    assert not matches("*check for oom*", RunbookLine("resolution", "dmesg", "Check for OOM"), notes=False)


RUNBOOK_CONFIG = 'runbook = "{path}"\n'


@pytest.mark.parametrize("path", [FASTAPI, NODE], ids=["fastapi", "node"])
def test_coverage_option_prints_the_line_listing(pytester: pytest.Pytester, path: Path) -> None:
    pytester.makefile(".toml", opscheck=RUNBOOK_CONFIG.format(path=path))
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "--opscheck-coverage")
    assert result.ret == pytest.ExitCode.OK
    out = result.stdout.str().splitlines()
    assert "every diagnosis section is covered" in out
    totals = next(line for line in out if line.startswith("runbook lines: "))
    assert totals.endswith(", 0 not automated")
    if path == FASTAPI:
        at = out.index("  Diagnosis:", out.index(next(line for line in out if line.startswith("API 500 Errors"))))
        assert out[at + 1] == ("    docker compose logs backend --tail=100 -f  # Check backend logs  -> "
                               "stack.logs_clean, stack.no_crash_loop")
        sentry = "    View error details in Sentry dashboard  -> manual: a human step: read the error tracker's " \
            "dashboard"
        assert sentry in out
    else:
        assert "    free -m  -> host.memory_free" in out
        assert "    Check resources:" in out


def test_a_malformed_automates_marker_fails_that_check_with_the_mistake(pytester: pytest.Pytester) -> None:
    (pytester.mkdir("team") / "test_jobs.py").write_text(
        "import pytest\n\n\n@pytest.mark.severity('P3')\n@pytest.mark.automates()\ndef test_queue():\n    pass\n"
    )
    pytester.makefile(".toml", opscheck='checks = ["team"]\n')
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-k", "jobs.")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the check alone fails, as P1; the sweep runs (SPEC.md)
    result.stdout.fnmatch_lines(["P1 CRITICAL FAILED jobs.queue*", "*cause: @pytest.mark.automates(): expected one "
                                 "or more names*"])


def test_the_postmortem_timeline_starts_from_the_deploys_the_failures_carry() -> None:
    from datetime import datetime

    from pytest_opscheck.model import CheckRecord, Deploy
    from pytest_opscheck.report.postmortem import render_postmortem

    backend = Deploy("backend", "app-backend-1", "app-backend:1.4.2 (image 0123456789ab, built 2024-05-01 09:50:00)",
                     "2024-05-01T09:52:10")
    db = Deploy("db", "app-db-1", "postgres:16 (image ba9876543210)", "2024-04-12T08:00:00")
    failed = CheckRecord("stack.logs_clean", "n1", "P2", "failed", 0.1, "backend: 3 matching line(s)", "",
                         deploys=(backend, db))
    health = CheckRecord("backend.health", "n2", "P1", "failed", 0.1, "answered 500", "", deploys=(backend,))
    started = datetime(2024, 5, 1, 9, 59, 58)
    text = render_postmortem([failed, health], started, datetime(2024, 5, 1, 10, 2), {}, None, str)
    timeline = text.split("### Timeline\n")[1].splitlines()
    assert timeline[:3] == [
        "- 08:00:00 (2024-04-12) - app-db-1 created from postgres:16 (image ba9876543210)",
        "- 09:52:10 - app-backend-1 created from app-backend:1.4.2 (image 0123456789ab, built 2024-05-01 09:50:00)",
        "- 09:59:58 - opscheck sweep started",
    ]


def test_free_memory_from_the_kernels_figures() -> None:
    from pytest_opscheck.probes.diagnosis.host_memory import meminfo, memory_verdict

    figures = meminfo("MemTotal:  4096000 kB\nMemFree:  100000 kB\nMemAvailable:  204800 kB\nSwapTotal:  0 kB\n"
                      "SwapFree:  0 kB\nHugePages_Total:  0\n")
    assert figures["MemAvailable"] == 204800 * 1024 and figures["HugePages_Total"] == 0
    low = memory_verdict(figures, 10.0, "/proc/meminfo")
    assert not low.ok
    assert low.cause == "only 5.0% of memory available on the engine's host (200.0 MiB of 3.9 GiB, limit 10%); no swap"
    assert memory_verdict(figures, 5.0, "/proc/meminfo").ok
    old_kernel = meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nCached: 300 kB\nBuffers: 100 kB\n")
    estimated = memory_verdict(old_kernel, 10.0, "/proc/meminfo")
    assert estimated.ok and "(estimated: this kernel has no MemAvailable)" in estimated.evidence["memory"]
