"""Time in the verdicts that depend on history (pure): one restart followed by a healthy run is not a crash loop,
several restarts or a run not yet well are; log excerpts keep a traceback's exception line whatever its length."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from pytest_opscheck.model import CheckRecord, Fact
from pytest_opscheck.probes import facts as F
from pytest_opscheck.probes.diagnosis.common import excerpt, last_lines
from pytest_opscheck.probes.resource.stack import SETTLED_SECONDS, container_state, crash_loop, restarted_once

NOW = time.time()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def inspected(restarts: int, up_for: float, health: str | None, status: str = "running") -> dict[str, Any]:
    state: dict[str, Any] = {"Status": status, "ExitCode": 0 if status == "running" else 1,
                             "StartedAt": iso(NOW - up_for), "FinishedAt": iso(NOW - up_for - 1)}
    if health:
        state["Health"] = {"Status": health}
    return {"State": state, "RestartCount": restarts, "HostConfig": {"RestartPolicy": {"Name": "always"}}}


@pytest.mark.parametrize("up_for", [2.0, 30.0, 100.0])
def test_one_restart_then_healthy_is_said_as_such_not_a_crash_loop(up_for: float) -> None:
    attrs = inspected(1, up_for, "healthy")
    assert crash_loop(attrs, NOW) is None
    said = restarted_once(attrs, NOW)
    assert said is not None and said.startswith("restarted once, ") and said.endswith("and healthy since")
    assert container_state(attrs, now=NOW)[0] == "running"


@pytest.mark.parametrize(("restarts", "up_for", "health"), [
    (1, 2.0, "starting"),  # not well yet
    (1, 2.0, "unhealthy"),
    (1, SETTLED_SECONDS - 5, None),  # no healthcheck, not running long enough to say
    (2, 30.0, "healthy"),  # twice is a loop, healthy between runs or not
    (5, 1.0, None),
])
def test_restarts_not_followed_by_a_settled_run_are_a_crash_loop(restarts: int, up_for: float,
                                                                 health: str | None) -> None:
    attrs = inspected(restarts, up_for, health)
    assert crash_loop(attrs, NOW) is not None
    assert restarted_once(attrs, NOW) is None
    assert container_state(attrs, now=NOW)[0] == "crash-looping"


def test_one_restart_and_running_long_enough_without_a_healthcheck_has_settled() -> None:
    attrs = inspected(1, SETTLED_SECONDS + 5, None)
    assert crash_loop(attrs, NOW) is None
    assert "running for" in (restarted_once(attrs, NOW) or "")
    assert crash_loop(inspected(1, 1.0, None, status="restarting"), NOW) is not None


FRAMES = ['  File "/app/.venv/lib/python3.12/site-packages/uvicorn/protocols/http/httptools_impl.py", line 421, '
          "in run_asgi", "    result = await app(  # type: ignore[func-returns-value]",
          '  File "/app/app/api/routes/items.py", line 27, in read_items', "    count = session.exec(count_statement)",
          "            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^"]
ERRORS = [
    ('sqlalchemy.exc.ProgrammingError: (psycopg.errors.UndefinedTable) relation "item" does not exist',
     ["LINE 1: SELECT count(*) AS count_1 FROM item", "                                     ^", "[SQL: SELECT 1]",
      "(Background on this error at: https://sqlalche.me/e/20/f405)"], F.MISSING_RELATION),
    ("psycopg.errors.UndefinedColumn: column user.created_at does not exist", [], F.MISSING_COLUMN),
    ('sqlalchemy.exc.OperationalError: (psycopg.OperationalError) connection failed: connection to server at '
     '"db" (172.18.0.2), port 5432 failed: Connection refused',
     ["\tIs the server running on that host and accepting TCP/IP connections?"], F.DB_REFUSED),
    ("KeyError: 'DATABASE_URL'", [], None),
]


@pytest.mark.parametrize(("error", "after", "kind"), ERRORS)
@pytest.mark.parametrize("depth", [1, 5, 40])
def test_an_excerpt_keeps_the_exception_line_however_deep_the_traceback(
    error: str, after: list[str], kind: str | None, depth: int
) -> None:
    before = [f"INFO:     127.0.0.1:5{i} - \"GET / HTTP/1.1\" 200 OK" for i in range(3)]
    log = [*before, "ERROR:    Exception in ASGI application", "Traceback (most recent call last):",
           *FRAMES * depth, error, *after, 'INFO:     127.0.0.1:60000 - "GET /health HTTP/1.1" 200 OK']
    hit = log.index("Traceback (most recent call last):")
    shown = excerpt(log, [hit]).splitlines()
    assert error in shown and shown.index(error) > shown.index(log[hit])
    assert len(shown) <= 10  # the frames between are skipped, said with "..."
    if depth > 1:
        assert "..." in shown
    tail = last_lines("\n".join(log), 2)  # a tail that cut the traceback still says what went wrong
    assert error in tail
    assert {f.kind for f in F.signatures(shown, "backend")} == ({kind} if kind else set())


def test_a_chain_of_exceptions_keeps_the_last_one() -> None:
    log = ["Traceback (most recent call last):", *FRAMES, "psycopg.errors.UndefinedTable: relation \"item\" does not "
           "exist", "LINE 1: SELECT 1", "", "The above exception was the direct cause of the following exception:", "",
           "Traceback (most recent call last):", *FRAMES * 3,
           'sqlalchemy.exc.ProgrammingError: (psycopg.errors.UndefinedTable) relation "item" does not exist',
           "[SQL: SELECT 1]", "(Background on this error at: https://sqlalche.me/e/20/f405)", "INFO: next"]
    shown = excerpt(log, [0]).splitlines()
    assert log[-4] in shown


def test_node_errors_come_first_and_are_kept_by_the_lines_before_a_hit() -> None:
    log = ["Error: connect ECONNREFUSED 127.0.0.1:5432",
           "    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)", "    at process (node:x:1:1)"]
    assert excerpt(log, [1]).splitlines()[0] == log[0]
    assert [f.kind for f in F.signatures(log, "backend")] == [F.DB_REFUSED]


def _oom_record(at: str) -> CheckRecord:
    return CheckRecord("stack.no_oom_kill", "n", "P1", "failed", 0.2, "killed by the OOM killer: backend", "Raise it.",
                       facts=(Fact("oom_killed", "backend", "Killed process 16413 (uvicorn)", at),),
                       started="2026-12-06T14:02:09.000+00:00")


@pytest.mark.parametrize(
    ("kill_at", "trigger"),
    [
        ("2026-12-06T14:02:03.400+00:00", "auth.login"),  # inside the login's run
        ("2026-12-06T14:02:05.900+00:00", "auth.login"),  # just after it ended: the kernel logs the kill late
        ("2026-12-06T14:02:06.800+00:00", "api.latency"),  # inside the next check's run
        ("2026-12-06T13:00:00.000+00:00", None),  # long before the sweep: not the sweep's doing
        ("", None),  # no time known
    ],
)
def test_an_oom_kill_names_the_sweeps_own_check_running_at_that_moment(kill_at: str, trigger: str | None) -> None:
    from pytest_opscheck.causes import with_triggers

    records = [
        CheckRecord("auth.login", "a", "P2", "failed", 2.1, "auth: server disconnected", "",
                    started="2026-12-06T14:02:03.000+00:00"),
        CheckRecord("api.latency", "b", "P3", "passed", 1.0, "", "", started="2026-12-06T14:02:06.500+00:00"),
        _oom_record(kill_at),
    ]
    oom = with_triggers(records)[-1]
    if trigger is None:
        assert oom == records[-1]
    else:
        assert f"while the sweep's own {trigger} was running" in oom.message
        assert "Triggered by the sweep" in oom.resolution and trigger in oom.resolution
