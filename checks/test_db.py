"""Database connection errors / database down / slow queries: the PostgreSQL diagnoses of the runbooks."""

from __future__ import annotations

import pytest

from pytest_opscheck.config import Settings
from pytest_opscheck.probes import database, migrations
from pytest_opscheck.probes.database import Database
from pytest_opscheck.verdict import expect, fail, skip_unless_configured


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """The database does not answer. By cause:
- refused / timed out: is the container up?  docker compose ps db
  then restart it:                          docker compose restart db
  and read why it stopped:                  docker compose logs db --tail=100
- authentication failed / database does not exist: the connection string and the database's own
  settings disagree; compare them:          grep POSTGRES .env
- too many connections: see db.connections_headroom; restarting the backend frees its pool:
                                            docker compose restart backend
- DNS failure: the host name in database_url is wrong, or the network is down."""
)
def test_reachable(db: Database) -> None:
    expect(database.reachable(db))


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """The schema is not the one the code expects. Apply the pending migrations:
  Alembic:  docker compose exec backend alembic upgrade head
            (see where it stands: docker compose exec backend alembic current; alembic history)
  Prisma:   cd backend && npx prisma migrate deploy
            (a failed migration must be resolved first: npx prisma migrate resolve --rolled-back <name>)
If the database is ahead of the code, a rollback of the deploy is the way back (alembic downgrade -1 only
after checking what it drops)."""
)
def test_migrations_current(db: Database, opscheck_config: Settings) -> None:
    skip_unless_configured(opscheck_config.missing("migrations"))
    config = opscheck_config.migrations
    assert config is not None
    try:
        if config.tool == "alembic":
            skip_unless_configured(opscheck_config.missing("migrations.script_location"))
            assert config.script_location is not None
            expect(migrations.alembic_current(db, opscheck_config.path(config.script_location)))
        else:
            expect(migrations.prisma_current(db, opscheck_config.path(config.migrations_dir)))
    except migrations.MigrationsError as exc:
        fail(str(exc))


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """The database is close to max_connections: new requests will fail with "too many clients".
See who holds them:  docker compose exec db psql -U postgres -c "SELECT usename, application_name, state, count(*)
                     FROM pg_stat_activity GROUP BY 1, 2, 3 ORDER BY 4 DESC;"
A leaking pool is usually the backend: docker compose restart backend
Long idle-in-transaction sessions: see db.no_long_transactions. Raise max_connections only with the memory for it."""
)
def test_connections_headroom(db: Database, opscheck_config: Settings) -> None:
    expect(database.connections_headroom(db, opscheck_config.thresholds.db_connections_percent))


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """A transaction has been open too long, or a session waits on a lock it cannot get.
Look at the sessions listed (pid, duration, blocked by) and at the blocking query:
  docker compose exec db psql -U postgres -c "SELECT pid, state, now() - xact_start, query
                                              FROM pg_stat_activity WHERE pid = <pid>;"
If it is safe to end the blocker, end it yourself (the check never does):
  docker compose exec db psql -U postgres -c "SELECT pg_terminate_backend(<pid>);"
Then find the code path that leaves transactions open (idle in transaction)."""
)
def test_no_long_transactions(db: Database, opscheck_config: Settings) -> None:
    expect(database.long_transactions(db, opscheck_config.thresholds.long_transaction_seconds))


@pytest.mark.severity("P3")
@pytest.mark.resolution(
    """Some statements are slow on average. For the worst one listed:
  docker compose exec db psql -U postgres -d <db> -c "EXPLAIN ANALYZE <the query>;"
Look for sequential scans on large tables and add the missing index in a migration
(alembic revision / prisma migrate dev), then deploy it (alembic upgrade head / npx prisma migrate deploy)."""
)
def test_slow_queries(db: Database, opscheck_config: Settings) -> None:
    if not database.statements_extension(db):
        pytest.skip(
            "pg_stat_statements is not installed in this database: add shared_preload_libraries = "
            "'pg_stat_statements' to postgresql.conf, restart, then CREATE EXTENSION pg_stat_statements;"
        )
    expect(database.slow_queries(db, opscheck_config.thresholds.slow_query_ms))
