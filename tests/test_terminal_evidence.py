"""The terminal is enough at 3 a.m. (issue 26, items 2, 3 and 9): under each root cause the lines that say what
broke, read off what real programs print (CPython, Node), however the log prefixes them; resolutions with the
failure's own values written in; the gaps said once, compactly; changes since the last green sweep under the
verdict; `-rs` labels each skipped check by its own severity and id; the first screen fits 80 columns."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from pytest_opscheck.model import Change, CheckRecord, Deploy, Fact, SkipKind, Skipped, summarize
from pytest_opscheck.report.paste import decisive_lines, paste_ready
from pytest_opscheck.report.terminal import WIDTH, summary_lines

PYTHON_CRASH = """
import os
def connect():
    try:
        {}["REDIS_URL"]
    except KeyError as exc:
        raise RuntimeError("worker cannot start: REDIS_URL is not set") from exc
connect()
"""
NODE_CRASH = "const net = require('net'); net.connect(1, '127.0.0.1').on('connect', () => {});"


def crash_output(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    return done.stdout + done.stderr


def python_log() -> str:
    return crash_output([sys.executable, "-c", PYTHON_CRASH])


def node_log() -> str:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    return crash_output(["node", "-e", NODE_CRASH])


# How logs reach us: as printed, with Docker's timestamps, in `docker compose logs` columns, with a level tag.
PREFIXES = ["", "2026-12-06T03:01:02.123456789Z ", "worker-1  | ", "[2026-12-06 03:01:02,123] [ERROR] "]


def crash_record(log: str, facts: tuple[Fact, ...] = (), **extra: object) -> CheckRecord:
    return CheckRecord(
        "stack.no_crash_loop", "n", "P1", "failed", 0.1, "worker (app-worker-1) restarting (restart count 3)",
        "Fix the cause:\n  docker compose -p app logs <service> --tail=100\n"
        "then: docker compose -p app up -d <service>",
        evidence={"app-worker-1: state": "exit code 1, restart count 3", "app-worker-1: last 30 log lines": log},
        facts=facts, **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("prefix", PREFIXES, ids=["plain", "timestamps", "compose", "level"])
@pytest.mark.parametrize(("program", "decisive"), [
    (python_log, "RuntimeError: worker cannot start: REDIS_URL is not set"),
    (node_log, "Error: connect ECONNREFUSED 127.0.0.1:1"),
])
def test_the_line_that_says_what_broke_is_found_in_real_crashes(prefix: str, program: object,
                                                                  decisive: str) -> None:
    output = program()  # type: ignore[operator]
    # Three runs of the crash loop, earlier runs first: the last one is read.
    log = "\n".join(prefix + line for _ in range(3) for line in ["starting worker", *output.splitlines()])
    lines = decisive_lines(crash_record(log))
    assert lines and lines[0] == f"app-worker-1: {decisive}", lines
    assert len(lines) <= 3
    assert not any("File \"" in line or line.strip().startswith("at ") for line in lines), "no frame"


def test_typed_facts_come_first_and_plain_lines_are_not_evidence() -> None:
    oom = Fact("oom_killed", "worker", "Out of memory: Killed process 4242 (python) total-vm:812344kB")
    record = crash_record("starting worker\nlistening on :8000\nshutting down", facts=(oom,))
    assert decisive_lines(record) == ["worker: Out of memory: Killed process 4242 (python) total-vm:812344kB"]
    assert decisive_lines(crash_record("starting worker\nlistening on :8000")) == []
    access = 'INFO:     172.18.0.1:50412 - "GET /favicon.ico HTTP/1.1" 404 Not Found\nrequest timed out after 30 s'
    assert decisive_lines(crash_record(access)) == [], "an access log's 404 says nothing broke"


def test_resolutions_are_paste_ready_with_the_failure_s_own_values() -> None:
    facts = (Fact("restarting", "worker", "restarting"), Fact("restarting", "beat", "restarting"))
    deploys = (Deploy("worker", "app-worker-1", "app:2", "2026-12-06T02:50:00Z"),)
    record = crash_record("", facts=facts, deploys=deploys)
    assert paste_ready(record).splitlines() == [
        "Fix the cause:",
        "  docker compose -p app logs worker --tail=100",
        "  docker compose -p app logs beat --tail=100",
        "then: docker compose -p app up -d worker",
        "then: docker compose -p app up -d beat",
    ]
    # The probe's own filled-in commands stand for the lines they fill, and the rest follow.
    filled = CheckRecord(
        "stack.healthchecks", "n", "P1", "failed", 0.1, "db unhealthy",
        "  docker inspect --format '{{json .State.Health}}' <container>\n  ss -ltnp | grep :<port>",
        evidence={"commands to run": "docker inspect --format '{{json .State.Health}}' app-db-1\n"
                                     "docker compose -p app logs db --tail=100"},
    )
    assert paste_ready(filled).splitlines() == [
        "  docker inspect --format '{{json .State.Health}}' app-db-1",
        "  ss -ltnp | grep :<port>",
        "commands for this failure:",
        "  docker compose -p app logs db --tail=100",
    ]


def skipped(check_id: str, kind: SkipKind, key: str, variable: str = "") -> CheckRecord:
    why = Skipped(kind, key, variable)
    return CheckRecord(check_id, check_id, "P2", "skipped", 0.0, why.reason, "", skipped=why)


def test_the_first_screen_reads_at_80_columns_and_says_what_was_not_checked() -> None:
    long_log = "Traceback (most recent call last):\n  File \"/app/worker.py\", line 3, in <module>\n" \
               "RuntimeError: " + "the worker could not start because " * 6 + "REDIS_URL is not set"
    records = [
        crash_record(long_log, facts=(Fact("restarting", "worker", "restarting"),)),
        CheckRecord("backend.health", "h", "P1", "failed", 0.1, "backend: refused", "",
                    caused_by="stack.no_crash_loop"),
        CheckRecord("api.latency", "a", "P3", "passed", 0.1, "", ""),
        skipped("smtp.session", SkipKind.NOT_CONFIGURED, "smtp.host"),
        skipped("email.configured", SkipKind.NOT_CONFIGURED, "smtp"),
        skipped("auth.login", SkipKind.NOT_CONFIGURED, "auth.login_path"),
        skipped("db.reachable", SkipKind.UNSET_VARIABLE, "database_url", "DB_URL"),
        skipped("db.no_corruption", SkipKind.UNSET_VARIABLE, "database_url", "DB_URL"),
    ]
    changes = (Change("image of worker", "app:1", "app:2", "2026-12-06T02:50:00Z"),
               Change("env SECRET_KEY", "hash a1", "hash b2", "2026-12-06T02:55:00Z"),
               Change("migration head", "0041", "0042", None))
    lines = summary_lines(summarize(records, last_green="2026-12-06T01:00:00Z", changes=changes))
    verdict_line = summarize(records).verdict  # the one line journalctl and CI logs are grepped for: whole
    assert all(len(line) <= WIDTH for line in lines if line != verdict_line), [
        line for line in lines if len(line) > WIDTH]
    text = "\n".join(lines)
    assert "    evidence: app-worker-1: RuntimeError: the worker could not start" in text
    assert "…" in text, "an evidence line is cut after two rows"
    assert "        docker compose -p app logs worker --tail=100" in lines
    assert "P1 CRITICAL FAILED backend.health — caused by stack.no_crash_loop" in lines
    gaps = [line for line in lines if line.startswith(("not configured", "variable unset"))]
    assert gaps == ["not configured (3 checks skipped): auth, smtp; switch off with disable=[...]",
                    "variable unset (2 checks not run): ${DB_URL} (database_url); --opscheck-strict"]
    verdict = lines.index(next(line for line in lines if line.startswith("P1 CRITICAL:")))
    assert lines[verdict + 1: verdict + 5] == [
        "changed since the last green sweep (2026-12-06T01:00:00Z):",
        "  env SECRET_KEY: hash a1 → hash b2 (2026-12-06T02:55:00Z)",
        "  image of worker: app:1 → app:2 (2026-12-06T02:50:00Z)",
        "  migration head: 0041 → 0042",
    ]


LABELLED = """
import pytest

@pytest.mark.severity("P1")
def test_first(smtp):
    pass

@pytest.mark.severity("P3")
def test_second(smtp):
    pass
"""


def test_dash_rs_labels_each_skipped_check_by_its_own_severity_and_id(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", opscheck='checks = ["ops"]\n')
    pytester.mkdir("ops").joinpath("test_mail.py").write_text(LABELLED)
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-k", "first or second", "-rs")
    labels = [line.split(" ops/")[0] for line in result.outlines if line.startswith("SKIPPED ")]
    assert sorted(labels) == ["SKIPPED P1 mail.first", "SKIPPED P3 mail.second"], result.stdout.str()[-2000:]
    assert sum("not configured (" in line for line in result.outlines) == 1


def test_a_failure_whose_root_did_not_run_here_is_shown_in_full() -> None:
    records = [
        CheckRecord("example.items_answer", "e", "P2", "failed", 0.1, "backend: connection refused by 127.0.0.1:9",
                    "Ask it:  curl -i http://127.0.0.1:9/api/v1/items/", caused_by="backend.health"),
        CheckRecord("api.latency", "a", "P3", "failed", 0.1, "backend: refused", "", caused_by="example.items_answer"),
    ]
    lines = summary_lines(summarize(records))
    assert lines[:4] == [
        "P2 HIGH     FAILED example.items_answer — respond within 1 hour",
        "    cause: backend: connection refused by 127.0.0.1:9",
        "    follows from: backend.health (not run here: select it too to see the root)",
        "    resolution:",
    ]
    assert "P3 MEDIUM   FAILED api.latency — caused by example.items_answer" in lines
