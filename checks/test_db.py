"""Database connection errors / database down / slow queries: the PostgreSQL diagnoses of the runbooks."""

from __future__ import annotations

import pytest

from pytest_opscheck.config import Settings
from pytest_opscheck.probes.diagnosis import database, migrations
from pytest_opscheck.probes.resource.database import Database
from pytest_opscheck.probes.resource.migrations import MigrationsError
from pytest_opscheck.verdict import expect, fail, skip_unless_configured


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """The database does not answer. By the cause named above:
- connection refused / timed out: is the container up, and why did it stop?
      docker compose ps db
      docker compose logs db --tail=100
      docker compose restart db
- starting up / shutting down: wait for it, then sweep again with a grace period:
      docker compose logs db --tail=50
      pytest --opscheck --opscheck-wait 60 -k db.
- authentication failed / database does not exist: database_url and the database's own settings
  disagree; compare the connection string with what the db service was created with:
      grep POSTGRES .env
      docker compose exec db psql -U postgres -c '\\du' -c '\\l'
- too many connections: see db.connections_headroom; a leaking pool is usually the backend:
      docker compose restart backend
- DNS lookup failed: the host in database_url is misspelt, or the service is not on that network:
      docker compose ps"""
)
@pytest.mark.topics("database", "outage")
def test_reachable(db: Database) -> None:
    expect(database.reachable(db))


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """The schema in the database is not the one the code expects. See where it stands, then apply
the pending migrations:
  Alembic:  docker compose exec backend alembic current
            docker compose exec backend alembic history
            docker compose exec backend alembic upgrade head
  Prisma:   cd backend && npx prisma migrate status
            cd backend && npx prisma migrate deploy
            (a failed migration blocks deploy: fix its cause, then mark it
             npx prisma migrate resolve --rolled-back <name>   and deploy again)
If the database is ahead of the code (a revision unknown to the folder), the deploy was rolled back:
redeploy the newer code, or downgrade only after reading what it drops (alembic downgrade -1)."""
)
@pytest.mark.topics("database", "api-500", "slow")
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
    except MigrationsError as exc:
        fail(str(exc))


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """The server is close to max_connections: new requests will soon get "too many clients".
See who holds the connections:
  docker compose exec db psql -U postgres -c "SELECT datname, usename, application_name, state, count(*)
    FROM pg_stat_activity GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC;"
A connection pool that leaks is usually the backend's; restarting it frees them:
  docker compose restart backend
Many "idle in transaction": see db.no_long_transactions. Raise max_connections only with the memory for it."""
)
@pytest.mark.topics("database", "slow")
def test_connections_headroom(db: Database, opscheck_config: Settings) -> None:
    expect(database.connections_headroom(db, opscheck_config.thresholds.db_connections_percent))


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """A transaction has stayed open too long, or a session waits on a lock it cannot get.
Look at the sessions listed (pid, duration, blocked by) and at what the blocker is doing:
  docker compose exec db psql -U postgres -c "SELECT pid, state, now() - xact_start AS open_for, query
    FROM pg_stat_activity WHERE pid = <pid>;"
If ending the blocker is safe, end it yourself (this check never does):
  docker compose exec db psql -U postgres -c "SELECT pg_terminate_backend(<pid>);"
Then find the code path that leaves a transaction open ("idle in transaction") and fix it."""
)
@pytest.mark.topics("database", "slow")
def test_no_long_transactions(db: Database, opscheck_config: Settings) -> None:
    expect(database.long_transactions(db, opscheck_config.thresholds.long_transaction_seconds))


@pytest.mark.severity("P3")
@pytest.mark.resolution(
    """Some statements are slow on average. Take the worst one listed and look at its plan:
  docker compose exec db psql -U postgres -d <database> -c "EXPLAIN (ANALYZE, BUFFERS) <the query>;"
A "Seq Scan" over a large table usually means a missing index: add it in a migration
(alembic revision -m "add index" / npx prisma migrate dev), then deploy it:
  docker compose exec backend alembic upgrade head      (or: cd backend && npx prisma migrate deploy)
To measure afresh once it is deployed:
  docker compose exec db psql -U postgres -d <database> -c "SELECT pg_stat_statements_reset();"
"""
)
@pytest.mark.topics("slow", "database")
def test_slow_queries(db: Database, opscheck_config: Settings) -> None:
    reason = database.statements_unavailable(db)
    if reason:
        pytest.skip(reason)
    expect(database.slow_queries(db, opscheck_config.thresholds.slow_query_ms))
