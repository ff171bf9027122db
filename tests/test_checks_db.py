"""The database checks against a real PostgreSQL: each fails on its real fault and passes when healthy."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from dbhelpers import PLANTED_DB_PASSWORD, admin, alembic_folder, app_url, blackhole, make_database
from realservices import Postgres, free_port

SWEEP = ("--opscheck", "-p", "no:cacheprovider", "-k", "db.", "--opscheck-json", "out.json")


def sweep(pytester: pytest.Pytester, config: str, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    """Run the database checks against `config`; return the run and the records by check id."""
    pytester.makefile(".toml", opscheck=config)
    result = pytester.runpytest(*SWEEP, *args)
    data = json.loads((pytester.path / "out.json").read_text())
    records = {c["id"]: c for c in data["checks"]}
    every_output = result.stdout.str() + result.stderr.str() + (pytester.path / "out.json").read_text()
    every_output += (pytester.path / "opscheck-report.html").read_text()
    assert PLANTED_DB_PASSWORD not in every_output
    return result, records


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCHECK_TEST_DB_PASSWORD", PLANTED_DB_PASSWORD)


@pytest.fixture(scope="module")
def healthy_db(postgres: Postgres) -> str:
    return make_database(postgres.url)


def test_healthy_database_passes_and_is_left_as_it_was(
    pytester: pytest.Pytester, postgres: Postgres, healthy_db: str
) -> None:
    def footprint() -> list[tuple[Any, ...]]:
        """Every relation outside the system schemas (the database is empty: a write would create one)."""
        with admin(postgres.url, healthy_db) as conn:
            return conn.execute(
                "SELECT relnamespace::regnamespace::text, relname FROM pg_class WHERE relnamespace NOT IN"
                " ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'pg_toast'::regnamespace)"
                " AND relname NOT LIKE 'pg_stat_statements%' ORDER BY 1, 2"
            ).fetchall()

    before = footprint()
    result, records = sweep(pytester, f'database_url = "{app_url(postgres.url, healthy_db)}"\n')
    for check in ("db.reachable", "db.connections_headroom", "db.no_long_transactions", "db.slow_queries"):
        assert records[check]["outcome"] == "passed", records[check]
    assert records["db.migrations_current"]["message"] == "not configured: migrations"
    assert result.ret == 0
    assert footprint() == before


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        ("wrong password", "authentication failed for user app on 127.0.0.1:{port}"),
        ("missing database", "database nowhere does not exist on 127.0.0.1:{port}"),
        ("nothing listening", "connection refused by 127.0.0.1:{port}"),
        ("never speaks", "timed out after 1 s connecting to 127.0.0.1:{port}"),
        ("unknown host", "DNS lookup failed for db.opscheck.invalid"),
    ],
)
def test_unreachable_database_is_named_once(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, postgres: Postgres, healthy_db: str,
    fault: str, cause: str,
) -> None:
    port = postgres.port
    url = app_url(postgres.url, healthy_db)
    with blackhole() as silent_port:
        if fault == "wrong password":
            monkeypatch.setenv("OPSCHECK_TEST_DB_PASSWORD", "PLANTED-db-pw-wrong")
        elif fault == "missing database":
            url = app_url(postgres.url, "nowhere")
        elif fault == "nothing listening":
            port = free_port()
            url = f"postgresql://app:${{OPSCHECK_TEST_DB_PASSWORD}}@127.0.0.1:{port}/x"
        elif fault == "never speaks":
            port = silent_port
            url = f"postgresql://app:${{OPSCHECK_TEST_DB_PASSWORD}}@127.0.0.1:{port}/x"
        else:
            url = "postgresql://app:${OPSCHECK_TEST_DB_PASSWORD}@db.opscheck.invalid:5432/x"
        started = time.monotonic()
        result, records = sweep(pytester, f'database_url = "{url}"\ntimeout = 1\n')
        elapsed = time.monotonic() - started
    assert records["db.reachable"]["outcome"] == "failed"
    assert records["db.reachable"]["message"] == f"db: {cause.format(port=port)}"
    assert records["db.reachable"]["caused_by"] is None
    for check in ("db.connections_headroom", "db.no_long_transactions"):
        assert records[check]["outcome"] == "failed"
        assert records[check]["caused_by"] == "db.reachable"
    assert elapsed < 15, "one timeout for all checks, not one per check"
    assert "PLANTED-db-pw-wrong" not in result.stdout.str()
    # db.reachable and db.no_corruption (P1, caused by it)
    result.stdout.fnmatch_lines(["*P1 CRITICAL: 2 checks failing (+* lower)*fix first: db.reachable*"])


def test_session_is_read_only(postgres: Postgres, healthy_db: str) -> None:
    import psycopg

    from pytest_opscheck.probes.resource.database import open_url

    db = open_url(app_url(postgres.url, healthy_db, PLANTED_DB_PASSWORD), 2)
    try:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            db.rows("CREATE TABLE should_not_exist (id int)")
    finally:
        db.close()


def test_alembic_head_applied_and_not(pytester: pytest.Pytester, postgres: Postgres) -> None:
    name = make_database(postgres.url)
    script = alembic_folder(pytester.path)
    config = (
        f'database_url = "{app_url(postgres.url, name)}"\n'
        f'migrations = {{ tool = "alembic", script_location = "{script.name}" }}\n'
    )
    _, records = sweep(pytester, config)
    never = records["db.migrations_current"]
    assert never["outcome"] == "failed"
    assert never["message"] == "no alembic_version table: the database was never migrated: run alembic upgrade head"
    assert "alembic upgrade head" in never["resolution"]

    with admin(postgres.url, name) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('aaaa')")
    _, records = sweep(pytester, config)
    behind = records["db.migrations_current"]
    assert behind["outcome"] == "failed"
    assert behind["message"] == "3 migration(s) not applied: database at aaaa, head tip"
    pending = behind["evidence"]["pending"]
    assert [line.split()[0] for line in pending.splitlines()[1:]] == ["bbbb", "merge1", "tip"]
    assert "add index on items" in pending

    with admin(postgres.url, name) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'tip'")
    _, records = sweep(pytester, config)
    assert records["db.migrations_current"]["outcome"] == "passed"


def test_alembic_several_heads(tmp_path: Path) -> None:
    from pytest_opscheck.probes.resource.migrations import alembic_revisions, heads

    script = alembic_folder(tmp_path)
    (script / "versions" / "0005_tip.py").unlink()
    (script / "versions" / "0004_merge.py").unlink()
    assert heads(alembic_revisions(script)) == {"aaaa", "bbbb"}


def test_prisma_failed_and_missing_migrations(pytester: pytest.Pytester, postgres: Postgres) -> None:
    name = make_database(postgres.url)
    for migration in ("20240101_init", "20240201_items", "20240301_index"):
        folder = pytester.path / "prisma" / "migrations" / migration
        folder.mkdir(parents=True)
        (folder / "migration.sql").write_text("SELECT 1;")
    with admin(postgres.url, name) as conn:
        conn.execute(
            """CREATE TABLE _prisma_migrations (
                id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL, finished_at timestamptz,
                migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamptz,
                started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count integer NOT NULL DEFAULT 0)"""
        )
        conn.execute(
            "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, logs) VALUES"
            " ('1', 'c', now(), '20240101_init', NULL),"
            " ('2', 'c', NULL, '20240201_items', 'ERROR: relation \"items\" already exists')"
        )
    config = f'database_url = "{app_url(postgres.url, name)}"\nmigrations = {{ tool = "prisma" }}\n'
    _, records = sweep(pytester, config)
    record = records["db.migrations_current"]
    assert record["outcome"] == "failed"
    assert record["message"] == (
        "1 failed migration(s): 20240201_items (blocks migrate deploy); 1 not applied: 20240301_index"
    )
    assert "already exists" in record["evidence"]["failed"]

    with admin(postgres.url, name) as conn:
        conn.execute("UPDATE _prisma_migrations SET finished_at = now(), logs = NULL WHERE id = '2'")
        conn.execute("INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name)"
                     " VALUES ('3', 'c', now(), '20240301_index')")
    _, records = sweep(pytester, config)
    assert records["db.migrations_current"]["outcome"] == "passed"


def test_long_transaction_and_blocked_lock(pytester: pytest.Pytester, postgres: Postgres) -> None:
    name = make_database(postgres.url)
    with admin(postgres.url, name) as conn:
        conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int)")
        conn.execute("INSERT INTO accounts VALUES (1, 100)")
    holder = admin(postgres.url, name)
    holder.autocommit = False
    holder.execute("UPDATE accounts SET balance = 90 WHERE id = 1")
    waiter = admin(postgres.url, name)
    blocked = threading.Thread(
        target=lambda: waiter.execute("UPDATE accounts SET balance = 80 WHERE id = 1"), daemon=True
    )
    blocked.start()
    try:
        time.sleep(2)
        config = f'database_url = "{app_url(postgres.url, name)}"\nthresholds = {{ long_transaction_seconds = 1 }}\n'
        _, records = sweep(pytester, config)
    finally:
        holder.rollback()
        blocked.join(timeout=10)
        holder.close()
        waiter.close()
    record = records["db.no_long_transactions"]
    assert record["outcome"] == "failed"
    assert "transaction(s) open over 1 s" in record["message"]
    assert "1 session(s) waiting on a lock held by pid" in record["message"]
    assert "pg_terminate_backend(<pid>)" in record["resolution"]
    assert "UPDATE accounts SET balance = 90" in record["evidence"]["sessions"]
    assert "waits on pid" in record["evidence"]["locks"]


def test_connections_headroom_threshold(pytester: pytest.Pytester, postgres: Postgres, healthy_db: str) -> None:
    held = [admin(postgres.url) for _ in range(5)]
    try:
        url = app_url(postgres.url, healthy_db)
        config = f'database_url = "{url}"\nthresholds = {{ db_connections_percent = 10 }}\n'
        _, records = sweep(pytester, config)
    finally:
        for conn in held:
            conn.close()
    record = records["db.connections_headroom"]
    assert record["outcome"] == "failed"
    assert "connections in use" in record["message"] and "≥ 10%" in record["message"]


def test_slow_queries_found_and_extension_absent(pytester: pytest.Pytester, postgres: Postgres) -> None:
    name = make_database(postgres.url)
    with admin(postgres.url, name) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute("SELECT pg_sleep(0.6)")
    config = f'database_url = "{app_url(postgres.url, name)}"\nthresholds = {{ slow_query_ms = 300 }}\n'
    _, records = sweep(pytester, config)
    record = records["db.slow_queries"]
    assert record["outcome"] == "failed"
    assert "SELECT pg_sleep($1)" in record["evidence"]["top 10 statements by mean time"]
    assert "EXPLAIN" in record["resolution"]

    bare = make_database(postgres.url, with_statements=False)
    _, records = sweep(pytester, f'database_url = "{app_url(postgres.url, bare)}"\n')
    record = records["db.slow_queries"]
    assert record["outcome"] == "skipped"
    assert "pg_stat_statements is not installed" in record["message"]
    assert "CREATE EXTENSION pg_stat_statements" in record["message"]
