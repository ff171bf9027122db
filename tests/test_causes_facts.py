"""Root causes from typed facts (causes.py, pure): one root per fault, each other failure tied to it.

Each case is a class of inputs: several services, origins, tables, severities; the same fault told by
different checks; two independent faults at once; and random mixtures that must never leave a consequence
pointing at a check that is not a root."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest

from pytest_opscheck.causes import Reach, attribution, sweep_summary
from pytest_opscheck.model import RESPONSE_TARGETS, CheckRecord, Fact
from pytest_opscheck.probes import facts as F

REACH = Reach(
    {"stack": "stack.services_running", "db": "db.reachable", "backend": "backend.health", "auth": "auth.login",
     "ws": "ws.handshake"},
    {"auth": ("backend",)},
)
SERVICES = ["backend", "worker", "api-gateway"]


def rec(check_id: str, *facts: Fact, severity: str = "P1", service: str | None = None, target: str | None = None,
        depends: tuple[str, ...] = (), outcome: str = "failed") -> CheckRecord:
    return CheckRecord(check_id, f"checks/x.py::{check_id}", severity, outcome, 0.1, f"{check_id} failed", "fix it",
                       facts=tuple(facts), service=service, target=target, depends=depends)


def judged(records: Iterable[CheckRecord], snapshots: tuple[object, ...] = ()) -> tuple[list[str], dict[str, str]]:
    summary = sweep_summary(list(records), REACH, snapshots, RESPONSE_TARGETS)  # type: ignore[arg-type]
    causes = {r.check_id: r.caused_by for r in summary.failed if r.caused_by}
    roots = list(dict.fromkeys(r.check_id.partition("[")[0] for r in summary.failed if not r.caused_by))
    # "Fix first" is said once some failure follows from another; every consequence names a root, and says
    # what tied it.
    assert list(summary.fix_first) == (roots if causes else [])
    ran = {r.check_id.partition("[")[0] for r in summary.records}
    assert {c for c in causes.values() if c in ran} <= set(roots)  # (one not run: the target's own check)
    for r in summary.failed:
        if r.caused_by:
            assert r.resolution.startswith(f"Fix {r.caused_by} first")
    return roots, causes


def crash_loop(service: str, *reason: Fact) -> list[CheckRecord]:
    """What a crash-looping `service` fails: every facet of it, its log saying `reason`."""
    return [
        rec("stack.no_crash_loop", Fact(F.RESTARTING, service, "restarting (5 restarts)"), *reason),
        rec("stack.services_running", Fact(F.NOT_RUNNING, service)),
        rec("stack.healthchecks", Fact(F.UNHEALTHY, service)),
        rec("stack.logs_clean", Fact(F.LOG_ERRORS, service), *reason, severity="P2"),
        rec("backend.health", service=service, target="backend"),
        rec("auth.login", service=service, target="auth", severity="P2"),
    ]


@pytest.mark.parametrize("service", SERVICES)
def test_a_crash_loop_is_one_fault_whatever_its_facets(service: str) -> None:
    first, causes = judged(crash_loop(service))
    assert first == ["stack.no_crash_loop"]
    assert causes == {c: "stack.no_crash_loop" for c in ("stack.services_running", "stack.healthchecks",
                                                         "stack.logs_clean", "backend.health", "auth.login")}


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("variable", ["SECRET_KEY", "JWT_SECRET", "DATABASE_URL"])
def test_the_variable_a_container_exits_on_is_the_root_of_its_crash_loop(service: str, variable: str) -> None:
    records = [
        *crash_loop(service),
        rec("stack.required_env", Fact(F.ENV_INVALID, service, variable), Fact(F.EXITS_ON_ENV, service, variable)),
        rec("auth.secret_configured", Fact(F.ENV_INVALID, service, variable), Fact(F.EXITS_ON_ENV, service, variable)),
    ]
    first, causes = judged(records)
    assert first == ["auth.secret_configured"]
    assert set(causes) == {r.check_id for r in records} - {"auth.secret_configured"}
    # Told by the environment check alone, it is that check.
    first, _ = judged(r for r in records if r.check_id != "auth.secret_configured")
    assert first == ["stack.required_env"]


@pytest.mark.parametrize("service", SERVICES)
def test_a_placeholder_the_container_does_not_exit_on_is_a_fault_of_its_own(service: str) -> None:
    records = [*crash_loop(service), rec("stack.required_env", Fact(F.ENV_INVALID, service, "SMTP_PASSWORD"))]
    first, _ = judged(records)
    assert first == ["stack.no_crash_loop", "stack.required_env"]


@pytest.mark.parametrize("service", SERVICES)
def test_an_oom_kill_is_the_root_of_the_restarts_it_causes(service: str) -> None:
    oom = Fact(F.OOM_KILLED, service, "Killed process 16413 (uvicorn) while the sweep ran auth.login")
    records = [*crash_loop(service), rec("stack.no_oom_kill", oom)]
    first, causes = judged(records)
    assert first == ["stack.no_oom_kill"]
    assert causes["auth.login"] == causes["stack.no_crash_loop"] == "stack.no_oom_kill"
    summary = sweep_summary(records, REACH, (), RESPONSE_TARGETS)
    crash = next(r for r in summary.failed if r.check_id == "stack.no_crash_loop")
    assert "Killed process 16413" in crash.resolution


def test_a_failure_on_a_service_whose_log_has_errors_is_not_put_down_to_them() -> None:
    """The login's own 500 may be what the log's traceback is: the log lines follow from it, not the reverse."""
    records = [rec("stack.logs_clean", Fact(F.LOG_ERRORS, "backend"), severity="P2"),
               rec("auth.login", severity="P2", service="backend")]
    first, causes = judged(records)
    assert causes == {} and first == ["auth.login", "stack.logs_clean"]


def test_two_containers_two_faults_and_a_check_that_sees_both_stays_a_root() -> None:
    records = [
        rec("stack.no_crash_loop", Fact(F.RESTARTING, "backend"), Fact(F.RESTARTING, "worker")),
        rec("stack.no_oom_kill", Fact(F.OOM_KILLED, "backend")),
        rec("stack.services_running", Fact(F.NOT_RUNNING, "backend")),
    ]
    first, causes = judged(records)
    assert first == ["stack.no_crash_loop", "stack.no_oom_kill"]
    assert causes == {"stack.services_running": "stack.no_oom_kill"}
    # Once the worker's loop is gone, the backend's kill is the one fault.
    first, _ = judged([rec("stack.no_crash_loop", Fact(F.RESTARTING, "backend")), *records[1:]])
    assert first == ["stack.no_oom_kill"]


@pytest.mark.parametrize("pid", ["32395", "88", "1201"])
def test_a_held_lock_is_the_root_of_a_login_that_timed_out(pid: str) -> None:
    lock = rec("db.no_long_transactions", Fact(F.LOCK_HELD, pid, f"3 session(s) waiting on pid {pid}"),
               severity="P2")
    login = rec("auth.login", Fact(F.TIMED_OUT, "auth.login", "no answer in 5 s"), severity="P2", service="backend")
    api = rec("api.latency", Fact(F.TIMED_OUT, "/api/v1/items/"), severity="P3", service="backend")
    first, causes = judged([lock, login, api])
    assert first == ["db.no_long_transactions"]
    assert causes == {"auth.login": "db.no_long_transactions", "api.latency": "db.no_long_transactions"}


def test_timeouts_with_no_lock_held_are_not_joined() -> None:
    login = rec("auth.login", Fact(F.TIMED_OUT, "auth.login"), severity="P2")
    api = rec("api.latency", Fact(F.TIMED_OUT, "/api/v1/items/"), severity="P3")
    first, causes = judged([login, api])
    assert first == ["auth.login", "api.latency"] and causes == {}


SCHEMA_ERRORS = [
    Fact(F.MISSING_RELATION, "/api/v1/items/", 'psycopg.errors.UndefinedTable: relation "item" does not exist'),
    Fact(F.MISSING_COLUMN, "/api/v1/users/me", 'column user.created_at does not exist'),
    Fact(F.MISSING_RELATION, "/graphql", "Invalid `prisma.user.findUnique()` invocation: The table `blog.User` "
                                         "does not exist in the current database."),
]


@pytest.mark.parametrize("error", SCHEMA_ERRORS, ids=lambda f: f.kind + f.subject)
@pytest.mark.parametrize("owner", [F.MIGRATIONS_BEHIND, F.MIGRATIONS_AHEAD])
def test_migrations_are_the_root_of_the_500s_whose_errors_name_the_schema(error: Fact, owner: str) -> None:
    records = [
        rec("db.migrations_current", Fact(owner, "app", "1 migration(s) not applied"), severity="P2"),
        rec("backend.health", error, service="backend"),
        rec("api.no_server_errors[/api/v1/items/]", error, severity="P2", service="backend"),
        rec("auth.login", error, severity="P2", service="backend"),
        rec("stack.logs_clean", Fact(F.LOG_ERRORS, "backend"), Fact(error.kind, "backend", error.detail),
            severity="P2"),
    ]
    first, causes = judged(records)
    assert first == ["db.migrations_current"]
    assert set(causes.values()) == {"db.migrations_current"} and len(causes) == 4
    summary = sweep_summary(records, REACH, (), RESPONSE_TARGETS)
    health = next(r for r in summary.failed if r.check_id == "backend.health")
    assert error.detail in health.resolution  # the line that tied them


@pytest.mark.parametrize("error", SCHEMA_ERRORS, ids=lambda f: f.kind + f.subject)
def test_a_table_gone_behind_current_migrations_is_one_fault_its_first_500_the_root(error: Fact) -> None:
    records = [
        rec("api.no_server_errors[/api/v1/items/]", error, severity="P2", service="backend"),
        rec("stack.logs_clean", Fact(F.LOG_ERRORS, "backend"), Fact(error.kind, "backend", error.detail),
            severity="P2"),
        rec("db.migrations_current", outcome="passed"),
    ]
    first, causes = judged(records)
    assert first == ["api.no_server_errors"]
    assert causes == {"stack.logs_clean": "api.no_server_errors"}


@pytest.mark.parametrize("origin", ["127.0.0.1:8000", "localhost:3001", "[::1]:9000"])
def test_a_backend_down_and_its_websocket_on_the_same_origin_are_one_fault(origin: str) -> None:
    health = rec("backend.health", Fact(F.HTTP_DOWN, origin, "connection refused"), target="backend")
    ws = rec("ws.handshake", Fact(F.WS_DOWN, origin, "connection refused"), severity="P2", target="ws")
    ping = rec("ws.ping", Fact(F.WS_DOWN, origin), severity="P2", target="ws")
    first, causes = judged([health, ws, ping])
    assert first == ["backend.health"]
    assert causes == {"ws.handshake": "backend.health", "ws.ping": "backend.health"}
    # A WebSocket served elsewhere is another process.
    first, causes = judged([health, rec("ws.handshake", Fact(F.WS_DOWN, "127.0.0.1:7000"), severity="P2")])
    assert first == ["backend.health", "ws.handshake"] and causes == {}


@pytest.mark.parametrize("line", [
    'connection to server at "db" (172.18.0.2), port 5432 failed: Connection refused',
    "Error: connect ECONNREFUSED 127.0.0.1:5432",
    "Can't reach database server at `db:5432`",
    'password authentication failed for user "app"',
])
def test_a_database_down_is_the_root_of_the_backend_logging_it_and_of_a_loop_it_causes(line: str) -> None:
    said = F.signatures(line, "backend")
    assert said, line
    db = rec("db.reachable", target="db", service="db")
    logs = rec("stack.logs_clean", Fact(F.LOG_ERRORS, "backend"), *said, severity="P2")
    login = rec("auth.login", severity="P2", service="backend", depends=("db.reachable",))  # its 500
    first, causes = judged([db, logs, login])
    assert first == ["db.reachable"]
    assert causes == {"stack.logs_clean": "db.reachable", "auth.login": "db.reachable"}
    # The backend exits on it: its crash loop (every facet) follows from the database too.
    first, causes = judged([db, *crash_loop("backend", *said)])
    assert first == ["db.reachable"]
    assert set(causes.values()) == {"db.reachable"}
    # With the database up, the same lines are the backend's own fault.
    first, _ = judged([logs, rec("db.reachable", outcome="passed")])
    assert first == ["stack.logs_clean"]


def test_a_database_container_stopped_is_the_root_of_the_database_failing() -> None:
    records = [
        rec("stack.services_running", Fact(F.NOT_RUNNING, "db")),
        rec("db.reachable", target="db", service="db"),
        rec("stack.logs_clean", Fact(F.LOG_ERRORS, "backend"), *F.signatures(
            "sqlalchemy.exc.OperationalError: (psycopg.OperationalError) connection failed: connection to server "
            'at "127.0.0.1", port 5432 failed: Connection refused', "backend"), severity="P2"),
    ]
    first, causes = judged(records)
    assert first == ["stack.services_running"]
    assert causes == {"db.reachable": "stack.services_running", "stack.logs_clean": "stack.services_running"}


KINDS = [F.RESTARTING, F.NOT_RUNNING, F.UNHEALTHY, F.LOG_ERRORS, F.OOM_KILLED, F.EXITS_ON_ENV, F.LOCK_HELD,
         F.TIMED_OUT, F.MIGRATIONS_BEHIND, F.MISSING_RELATION, F.DB_REFUSED, F.HTTP_DOWN, F.WS_DOWN, F.DB_DOWN]
CHECKS = ["stack.no_crash_loop", "stack.services_running", "stack.healthchecks", "stack.logs_clean",
          "stack.no_oom_kill", "stack.required_env", "db.reachable", "db.migrations_current", "backend.health",
          "ws.handshake", "auth.login", "api.no_server_errors", "db.no_long_transactions"]


@pytest.mark.parametrize("seed", range(200))
def test_any_mixture_of_facts_has_roots_and_every_consequence_points_at_one(seed: int) -> None:
    rnd = random.Random(seed)
    records = []
    for check in rnd.sample(CHECKS, rnd.randint(1, len(CHECKS))):
        facts = [Fact(rnd.choice(KINDS), rnd.choice(["backend", "db", "127.0.0.1:8000"]))
                 for _ in range(rnd.randint(0, 3))]
        records.append(rec(check, *facts, severity=rnd.choice(["P1", "P2", "P3"]),
                           service=rnd.choice([None, "backend", "db"]),
                           target=rnd.choice([None, "db", "backend", "auth", "ws"])))
    first, causes = judged(records)
    ran = {r.check_id for r in records}
    assert first or not {c for c in causes.values() if c in ran}, records
    assert not set(causes) & set(first)
    assert set(attribution(records, REACH)) == set(causes)


@pytest.mark.parametrize(("http", "ws", "same"), [
    ("http://localhost:8000/api/v1/utils/health-check/", "ws://127.0.0.1:8000/ws", True),
    ("https://app.example.com/health", "wss://app.example.com/realtime", True),
    ("http://[::1]:3001/health", "ws://localhost:3001/socket.io/", True),
    ("http://localhost:8000/health", "ws://localhost:8001/ws", False),
    ("https://app.example.com/health", "ws://app.example.com/ws", False),
])
def test_an_origin_is_one_process_whatever_the_scheme_or_loopback_name(http: str, ws: str, same: bool) -> None:
    health = rec("backend.health", *F.down(http, "connection refused"), target="backend")
    handshake = rec("ws.handshake", *F.down(ws, "[Errno 111] Connect call failed", websocket=True), severity="P2")
    first, causes = judged([health, handshake])
    assert causes == ({"ws.handshake": "backend.health"} if same else {})
    assert first == (["backend.health"] if same else ["backend.health", "ws.handshake"])


def test_only_no_answer_is_a_process_down_and_only_error_answers_name_a_fault() -> None:
    assert F.down("http://localhost:8000/", "HTTP 500 from /health") == ()
    assert F.down("http://localhost:8000/", "timed out after 5 s")[0].kind == F.HTTP_DOWN
    body = '{"detail": "relation \\"item\\" does not exist"}'
    assert F.answered(200, body, "/items") == ()
    assert [f.kind for f in F.answered(500, body, "/items")] == [F.MISSING_RELATION]
    graphql = ('{"errors": [{"message": "\\nInvalid `prisma.user.findUnique()` invocation:\\n\\n\\nThe table '
               '`blog.User` does not exist in the current database.", "extensions": {"code": "P2021"}}]}')
    assert [f.kind for f in F.answered(200, graphql, "/graphql")] == [F.MISSING_RELATION]


# Prisma's messages as its error reference documents them (its engines cannot be fetched here to raise them).
PRISMA = [
    ("P1001", "Can't reach database server at `db`:`5432`\n\nPlease make sure your database server is running at "
              "`db`:`5432`.", F.DB_REFUSED),
    ("P1000", "Authentication failed against database server at `db`, the provided database credentials for "
              "`postgres` are not valid.", F.DB_AUTH_FAILED),
    ("P1003", "Database `blog` does not exist at db:5432", F.DB_UNKNOWN),
    ("P2021", "Invalid `prisma.user.findUnique()` invocation:\n\n\nThe table `blog.User` does not exist in the current "
              "database.", F.MISSING_RELATION),
    ("P2022", "Invalid `prisma.user.findMany()` invocation:\n\n\nThe column `User.createdAt` does not exist in the "
              "current database.", F.MISSING_COLUMN),
    ("P2024", "Timed out fetching a new connection from the connection pool. More info: http://pris.ly/d/connection-"
              "pool (Current connection pool timeout: 10, connection limit: 5)", F.POOL_TIMEOUT),
]


@pytest.mark.parametrize(("code", "message", "kind"), PRISMA, ids=[p[0] for p in PRISMA])
def test_prisma_errors_are_read_by_message_and_by_code(code: str, message: str, kind: str) -> None:
    assert {f.kind for f in F.signatures(message, "api")} == {kind}
    # A GraphQL error as Apollo/NestJS answer it: the message, and the code in its extensions.
    import json

    body = json.dumps({"errors": [{"message": message, "extensions": {"code": code}}], "data": None})
    assert {f.kind for f in F.answered(200, body, "/graphql")} == {kind}
    assert {f.kind for f in F.signatures(f"PrismaClientKnownRequestError: code {code}", "api")} == {kind}


@pytest.mark.parametrize("service", SERVICES)
def test_the_wait_gives_up_on_every_check_whose_root_cannot_heal(service: str) -> None:
    from pytest_opscheck.causes import cannot_heal

    loop = crash_loop(service)
    # A check with no service of its own (a configuration check) failing on the crash-looping service's answers.
    config = rec("stack.config_current", severity="P2", service=service)
    assert "its root stack.no_crash_loop" in (cannot_heal(config, loop, REACH) or "")
    assert cannot_heal(loop[0], loop[1:], REACH) == f"{service}: restarting (5 restarts)"
    oom = [*loop, rec("stack.no_oom_kill", Fact(F.OOM_KILLED, service, "Killed process 7 (uvicorn)"))]
    assert cannot_heal(loop[4], oom, REACH) == f"its root stack.no_oom_kill: {service}: Killed process 7 (uvicorn)"
    assert cannot_heal(loop[4], [*loop, rec("stack.no_oom_kill", Fact(F.OOM_KILLED, service))], REACH) == \
        f"its root stack.no_oom_kill: {service} oom killed"
    # A database still starting up may heal: the wait goes on.
    assert cannot_heal(rec("auth.login", service=service, depends=("db.reachable",)),
                       [rec("db.reachable", target="db")], REACH) is None
