"""The error-signature catalogue and root causes against a real PostgreSQL, with the errors the real libraries
raise (psycopg 3, SQLAlchemy, asyncpg, node-postgres): each signature read from the library's own text and from
its traceback as a log has it (the excerpt keeps the exception line), a real held lock and a real schema behind
its migrations tied to the failures they cause."""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dbhelpers import PLANTED_DB_PASSWORD, admin, alembic_folder, app_url, make_database
from realservices import Postgres, free_port

from pytest_opscheck.causes import Reach, sweep_summary
from pytest_opscheck.model import RESPONSE_TARGETS, CheckRecord, Fact
from pytest_opscheck.probes import facts as F
from pytest_opscheck.probes.diagnosis import database, migrations
from pytest_opscheck.probes.diagnosis.common import excerpt
from pytest_opscheck.probes.resource.database import open_url

REACH = Reach({"db": "db.reachable", "backend": "backend.health", "auth": "auth.login"}, {"auth": ("backend",)})


@pytest.fixture(scope="module")
def appdb(postgres: Postgres) -> str:
    """A database with the tables an app reads (`user`, `item`), role `app` able to read them."""
    name = make_database(postgres.url)
    with admin(postgres.url, name) as conn:
        conn.execute('CREATE TABLE "user" (email text PRIMARY KEY, hashed_password text)')
        conn.execute("CREATE TABLE item (id int PRIMARY KEY, title text)")
        conn.execute('GRANT SELECT, INSERT ON "user", item TO app')
        conn.execute("DROP ROLE IF EXISTS limited")
        conn.execute(f"CREATE ROLE limited LOGIN PASSWORD '{PLANTED_DB_PASSWORD}' CONNECTION LIMIT 0")
    return name


def raised(action: Callable[[], Any]) -> BaseException:
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - the library's own exception is what is looked at
        return exc
    pytest.fail("no error raised")


def psycopg_query(url: str, sql: str, setup: str = "") -> Callable[[], Any]:
    def run() -> None:
        import psycopg

        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            if setup:
                conn.execute(setup)
            conn.execute(sql).fetchall()

    return run


def psycopg_connect(url: str) -> Callable[[], Any]:
    def run() -> None:
        import psycopg

        psycopg.connect(url, connect_timeout=3).close()

    return run


def sqlalchemy_query(url: str, sql: str) -> Callable[[], Any]:
    def run() -> None:
        import sqlalchemy

        engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://"),
                                          connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text(sql)).fetchall()
        finally:
            engine.dispose()

    return run


def asyncpg_query(url: str, sql: str, setup: str = "") -> Callable[[], Any]:
    def run() -> None:
        import asyncio

        import asyncpg

        async def go() -> None:
            conn = await asyncpg.connect(url, timeout=3)
            try:
                if setup:
                    await conn.execute(setup)
                await conn.fetch(sql)
            finally:
                await conn.close()

        asyncio.run(go())

    return run


def sqlalchemy_pool_timeout(url: str) -> Callable[[], Any]:
    def run() -> None:
        import sqlalchemy

        engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://"), pool_size=1,
                                          max_overflow=0, pool_timeout=0.2)
        try:
            with engine.connect(), engine.connect():
                pass
        finally:
            engine.dispose()

    return run


def cases(postgres: Postgres, appdb: str) -> dict[str, tuple[Callable[[], Any], str]]:
    """Each real error, by the library that raises it, with the signature it must be read as."""
    url = app_url(postgres.url, appdb, PLANTED_DB_PASSWORD)
    refused = f"postgresql://app:{PLANTED_DB_PASSWORD}@127.0.0.1:{free_port()}/app"
    return {
        "psycopg relation": (psycopg_query(url, "SELECT * FROM items_gone"), F.MISSING_RELATION),
        "psycopg qualified column": (psycopg_query(url, 'SELECT "user".created_at FROM "user"'), F.MISSING_COLUMN),
        "psycopg quoted column": (psycopg_query(url, 'SELECT "createdAt" FROM item'), F.MISSING_COLUMN),
        "psycopg column of relation": (
            psycopg_query(url, "INSERT INTO item (id, created_at) VALUES (1, now())"), F.MISSING_COLUMN),
        "psycopg refused": (psycopg_connect(refused), F.DB_REFUSED),
        "psycopg password": (psycopg_connect(url.replace(PLANTED_DB_PASSWORD, "wrong-password")), F.DB_AUTH_FAILED),
        "psycopg no database": (psycopg_connect(url.replace(appdb, "app_gone")), F.DB_UNKNOWN),
        "psycopg role limit": (psycopg_connect(url.replace("app:", "limited:")), F.TOO_MANY_CLIENTS),
        "psycopg statement timeout": (
            psycopg_query(url, "SELECT pg_sleep(2)", "SET statement_timeout = '100ms'"), F.STATEMENT_TIMEOUT),
        "sqlalchemy relation": (sqlalchemy_query(url, "SELECT * FROM items_gone"), F.MISSING_RELATION),
        "sqlalchemy column": (sqlalchemy_query(url, 'SELECT "user".created_at FROM "user"'), F.MISSING_COLUMN),
        "sqlalchemy refused": (sqlalchemy_query(refused, "SELECT 1"), F.DB_REFUSED),
        "sqlalchemy password": (
            sqlalchemy_query(url.replace(PLANTED_DB_PASSWORD, "wrong-password"), "SELECT 1"), F.DB_AUTH_FAILED),
        "sqlalchemy pool": (sqlalchemy_pool_timeout(url), F.POOL_TIMEOUT),
        "asyncpg relation": (asyncpg_query(url, "SELECT * FROM items_gone"), F.MISSING_RELATION),
        "asyncpg column": (asyncpg_query(url, 'SELECT "user".created_at FROM "user"'), F.MISSING_COLUMN),
        "asyncpg refused": (asyncpg_query(refused, "SELECT 1"), F.DB_REFUSED),
        "asyncpg password": (
            asyncpg_query(url.replace(PLANTED_DB_PASSWORD, "wrong-password"), "SELECT 1"), F.DB_AUTH_FAILED),
        "asyncpg no database": (asyncpg_query(url.replace(appdb, "app_gone"), "SELECT 1"), F.DB_UNKNOWN),
        "asyncpg role limit": (asyncpg_query(url.replace("app:", "limited:"), "SELECT 1"), F.TOO_MANY_CLIENTS),
        "asyncpg statement timeout": (
            asyncpg_query(url, "SELECT pg_sleep(2)", "SET statement_timeout = '100ms'"), F.STATEMENT_TIMEOUT),
    }


NAMES = ["psycopg relation", "psycopg qualified column", "psycopg quoted column", "psycopg column of relation",
         "psycopg refused", "psycopg password", "psycopg no database", "psycopg role limit",
         "psycopg statement timeout", "sqlalchemy relation", "sqlalchemy column", "sqlalchemy refused",
         "sqlalchemy password", "sqlalchemy pool", "asyncpg relation", "asyncpg column", "asyncpg refused",
         "asyncpg password", "asyncpg no database", "asyncpg role limit", "asyncpg statement timeout"]


def as_logged(exc: BaseException) -> list[str]:
    """The exception as a backend's log has it: uvicorn's line, the traceback (a chain for SQLAlchemy), a
    request line after."""
    tb = "".join(traceback.format_exception(exc)).splitlines()
    return ['INFO:     127.0.0.1:51234 - "GET /api/v1/items/ HTTP/1.1" 200 OK',
            "ERROR:    Exception in ASGI application", *tb,
            'INFO:     127.0.0.1:51240 - "GET /api/v1/utils/health-check/ HTTP/1.1" 200 OK']


@pytest.mark.parametrize("name", NAMES)
def test_each_real_error_is_read_as_its_signature_from_its_message_and_its_logged_traceback(
    postgres: Postgres, appdb: str, name: str
) -> None:
    action, kind = cases(postgres, appdb)[name]
    exc = raised(action)
    said = F.signatures(str(exc), "/api/v1/items/")
    assert {f.kind for f in said} == {kind}, (str(exc), said)
    assert PLANTED_DB_PASSWORD not in str(exc)
    # The log of it: a scan that matches the traceback's first line keeps the line that says what went wrong.
    lines = as_logged(exc)
    start = next(i for i, line in enumerate(lines) if line.startswith("Traceback"))
    shown = excerpt(lines, [start]).splitlines()
    # (SQLAlchemy's message goes on after it: the statement, a link; psycopg's: LINE 1 and a caret.)
    decisive = traceback.format_exception_only(exc)[0].splitlines()[0]
    assert decisive in shown, (decisive, shown)
    assert kind in {f.kind for f in F.signatures(shown, "backend")}


@pytest.fixture
def held_lock(postgres: Postgres, appdb: str) -> Iterator[int]:
    """A session idle in a transaction holding `LOCK TABLE "user"`; a login's SELECT on it waits. Yields the
    holder's pid."""
    holder = admin(postgres.url, appdb)
    holder.autocommit = False
    holder.execute('LOCK TABLE "user" IN ACCESS EXCLUSIVE MODE')
    url = app_url(postgres.url, appdb, PLANTED_DB_PASSWORD)
    waiting = psycopg_query(url, "SELECT hashed_password FROM \"user\" WHERE email = 'smoke@example.com'",
                            "SET statement_timeout = '20s'")
    login = threading.Thread(target=waiting)  # answers once the lock is gone
    login.start()
    try:
        yield holder.info.backend_pid
    finally:
        holder.rollback()
        holder.close()
        login.join(timeout=30)


def test_a_real_held_lock_is_the_root_of_the_login_it_blocks(
    postgres: Postgres, appdb: str, held_lock: int
) -> None:
    pid = held_lock
    db = open_url(app_url(postgres.url, appdb, PLANTED_DB_PASSWORD), 2)
    try:
        deadline = time.monotonic() + 15
        while True:  # the login's session reaches the lock
            finding = database.long_transactions(db, 3600)
            if not finding.ok or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        # The login waited on it: a backend cancels its statement (here with a lock timeout of its own).
        blocked = raised(psycopg_query(app_url(postgres.url, appdb, PLANTED_DB_PASSWORD),
                                       'SELECT 1 FROM "user"', "SET lock_timeout = '200ms'"))
    finally:
        db.close()
    assert not finding.ok and f"waiting on a lock held by pid {pid} (idle in transaction " in finding.cause
    assert finding.cause.endswith('LOCK TABLE "user" IN ACCESS EXCLUSIVE MODE)')
    assert [(f.kind, f.subject) for f in finding.facts] == [(F.LOCK_HELD, str(pid))]
    assert 'LOCK TABLE "user"' in finding.facts[0].detail
    said = F.signatures(str(blocked), "auth.login")
    assert [f.kind for f in said] == [F.LOCK_TIMEOUT]
    records = [
        CheckRecord("db.no_long_transactions", "n1", "P2", "failed", 0.1, finding.cause, "r", facts=finding.facts),
        CheckRecord("auth.login", "n2", "P2", "failed", 5.0, "timed out", "r", facts=(
            *said, Fact(F.TIMED_OUT, "auth.login", "no answer in 5 s")), target="auth", service="backend"),
        CheckRecord("db.reachable", "n3", "P1", "passed", 0.1, "", "r"),
    ]
    summary = sweep_summary(records, REACH, (), RESPONSE_TARGETS)
    assert summary.fix_first == ("db.no_long_transactions",)
    login = next(r for r in summary.failed if r.check_id == "auth.login")
    assert login.caused_by == "db.no_long_transactions"
    assert f"waiting on pid {pid}" in login.resolution and "lock timeout" in login.resolution


def test_a_real_schema_behind_its_migrations_is_the_root_of_the_500s_naming_its_tables(
    postgres: Postgres, tmp_path: Path
) -> None:
    name = make_database(postgres.url)
    folder = alembic_folder(tmp_path)
    with admin(postgres.url, name) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('base')")  # the deploy's migrations never ran
        conn.execute("GRANT SELECT ON alembic_version TO app")
    url = app_url(postgres.url, name, PLANTED_DB_PASSWORD)
    db = open_url(url, 2)
    try:
        finding = migrations.alembic_current(db, folder)
    finally:
        db.close()
    assert [f.kind for f in finding.facts] == [F.MIGRATIONS_BEHIND]
    # What the health endpoint and an API path answer (their 500s quote the real error), and the backend's log.
    health_error = str(raised(psycopg_query(url, "SELECT count(*) FROM item")))
    api_error = str(raised(sqlalchemy_query(url, 'SELECT "user".created_at FROM "user"')))
    records = [
        CheckRecord("db.migrations_current", "n1", "P2", "failed", 0.1, finding.cause, "r", facts=finding.facts),
        CheckRecord("backend.health", "n2", "P1", "failed", 0.1, "500", "r",
                    facts=F.signatures(health_error, "/api/v1/utils/health-check/"), service="backend"),
        CheckRecord("api.no_server_errors[/api/v1/users/]", "n3", "P2", "failed", 0.1, "500", "r",
                    facts=F.signatures(api_error, "/api/v1/users/"), service="backend"),
        CheckRecord("stack.logs_clean", "n4", "P2", "failed", 0.1, "errors", "r",
                    facts=(Fact(F.LOG_ERRORS, "backend"), *F.signatures(health_error, "backend"))),
    ]
    summary = sweep_summary(records, REACH, (), RESPONSE_TARGETS)
    assert summary.fix_first == ("db.migrations_current",)
    assert {r.check_id: r.caused_by for r in summary.failed if r.caused_by} == {
        "backend.health": "db.migrations_current",
        "api.no_server_errors[/api/v1/users/]": "db.migrations_current",
        "stack.logs_clean": "db.migrations_current",
    }
    health = next(r for r in summary.failed if r.check_id == "backend.health")
    assert 'relation "item" does not exist' in health.resolution



NODE_CASES = {"relation": F.MISSING_RELATION, "column": F.MISSING_COLUMN, "refused": F.DB_REFUSED,
              "password": F.DB_AUTH_FAILED, "statement timeout": F.STATEMENT_TIMEOUT, "no database": F.DB_UNKNOWN,
              "role limit": F.TOO_MANY_CLIENTS}


def test_node_postgres_errors_are_read_as_their_signatures(postgres: Postgres, appdb: str) -> None:
    """node-postgres (pg 8, installed from npm into the tests' cache) raising each error against the real server:
    its message, and its stack as a Node backend logs it (the message line first, then `at ...` frames)."""
    import json
    import subprocess

    from anyapp.node import HERE, node_modules
    from realservices import ServiceUnavailable

    try:
        folder = node_modules(("pg@8",))
    except ServiceUnavailable as exc:
        pytest.skip(f"REAL SERVICE MISSING: {exc}")
    url = app_url(postgres.url, appdb, PLANTED_DB_PASSWORD)
    refused = f"postgresql://app:{PLANTED_DB_PASSWORD}@127.0.0.1:{free_port()}/app"
    urls = [url, refused, url.replace(PLANTED_DB_PASSWORD, "bad-pw"), url.replace(appdb, "app_gone"),
            url.replace("app:", "limited:")]
    run = subprocess.run(["node", str(HERE / "pg_errors.js"), *urls],
                         cwd=folder, env={"PATH": os.environ["PATH"], "NODE_PATH": str(folder / "node_modules")},
                         capture_output=True, text=True, timeout=60, check=True)
    results = {r["name"]: r for r in map(json.loads, run.stdout.splitlines())}
    assert set(results) == set(NODE_CASES)
    for name, kind in NODE_CASES.items():
        said = results[name]
        assert said["message"], said
        assert {f.kind for f in F.signatures(said["message"], "api")} == {kind}, said
        logged = said["stack"].splitlines()
        assert {f.kind for f in F.signatures(excerpt(logged, [len(logged) - 1]).splitlines(), "api")} == {kind}, logged
