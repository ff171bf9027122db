"""Database connection errors / database down / slow queries: the PostgreSQL diagnoses of the runbooks."""

from __future__ import annotations

import pytest

from pytest_opscheck import steps
from pytest_opscheck.config import Settings
from pytest_opscheck.config.keys import skipped_for
from pytest_opscheck.probes.diagnosis import database, db_health, migrations
from pytest_opscheck.probes.resource.database import Database
from pytest_opscheck.probes.resource.migrations import MigrationsError
from pytest_opscheck.verdict import expect, fail, skip_unless_configured


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """The database does not answer. By the cause named above:
- connection refused / timed out: is the container up, and why did it stop?
      {compose} ps {db}
      {compose} logs {db} --tail=100
      {compose} restart {db}
- starting up / shutting down: wait for it, then sweep again with a grace period:
      {compose} logs {db} --tail=50
      pytest --opscheck --opscheck-wait 60 -k db.
- authentication failed / database does not exist: database_url and the database's own settings
  disagree; compare the connection string with what the db service was created with:
      grep -e POSTGRES -e DATABASE_URL {env_file}
      {psql} -c '\\du' -c '\\l'
- too many connections: see db.connections_headroom, whose cause names who holds them (user, application,
  client address); restart that holder's pool, not whichever service is nearest
- DNS lookup failed: the host in database_url is misspelt, or the service is not on that network:
      {compose} ps"""
)
@pytest.mark.topics("database", "outage")
@pytest.mark.automates(
    "docker compose exec * psql *", "docker compose ps db", "docker compose ps postgres", "*test connection*",
    "*check database state*",
)
def test_reachable(db: Database) -> None:
    expect(database.reachable(db))


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """The schema in the database is not the one the code expects. See where it stands, then apply
the pending migrations:
  Alembic:  {alembic} current
            {alembic} history
            {alembic} upgrade head
  Prisma:   {prisma} migrate status       (the evidence lists each migration's state and its commands)
  - not applied:  {prisma} migrate deploy
  - failed (finished_at empty): it blocks deploy; fix what its log says, then
                  {prisma} migrate resolve --rolled-back <name>   and  {prisma} migrate deploy
  - ran but no row in _prisma_migrations (its tables exist): deploy would fail on "already exists";
    record it instead:  {prisma} migrate resolve --applied <name>
If the database is ahead of the code (a revision unknown to the folder), a newer release migrated it and
the code was rolled back: from this code both `alembic upgrade head` and `alembic downgrade -1` fail
("Can't locate revision identified by ..."). Redeploy the newer release (its image is in the evidence's
`deployed` lines and in what changed since the last green sweep), or downgrade from that release's own image
after reading what it drops: docker run --rm <newer image> alembic downgrade <the head named in the evidence>."""
)
@pytest.mark.topics("database", "api-500", "slow")
@pytest.mark.automates(
    "* alembic current*", "* alembic history*", "* prisma migrate status*", "*check migrations*",
    "verify migrations applied",
)
def test_migrations_current(db: Database, opscheck_config: Settings) -> None:
    skip_unless_configured(skipped_for(opscheck_config, "migrations"))
    config = opscheck_config.migrations
    assert config is not None
    try:
        if config.tool == "alembic":
            skip_unless_configured(skipped_for(opscheck_config, "migrations.script_location"))
            assert config.script_location is not None
            expect(migrations.alembic_current(db, opscheck_config.path(config.script_location)))
        else:
            folder = opscheck_config.path(config.migrations_dir)
            expect(migrations.prisma_current(db, folder, steps.prisma_command(opscheck_config)))
    except MigrationsError as exc:
        fail(str(exc))


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """The server is close to max_connections: new requests will soon get "too many clients".
See who holds the connections:
  {psql} -c "SELECT datname, usename, application_name, state, count(*)
    FROM pg_stat_activity GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC;"
The cause names the biggest holder (user, application_name, client address): that one's pool leaks or is
sized too big. Restart that service to free them; the backend only if it is the holder:
  {compose} restart {backend}
then size its pool (pool_size/max_overflow, Prisma's connection_limit) under max_connections.
Many "idle in transaction": see db.no_long_transactions. Raise max_connections only with the memory for it."""
)
@pytest.mark.topics("database", "slow")
@pytest.mark.automates("* pg_stat_activity*")
def test_connections_headroom(db: Database, opscheck_config: Settings) -> None:
    expect(database.connections_headroom(db, opscheck_config.thresholds.db_connections_percent))


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """A transaction has stayed open too long, or a session waits on a lock it cannot get.
Look at the sessions listed (pid, duration, blocked by) and at what the blocker is doing:
  {psql} -c "SELECT pid, state, now() - xact_start AS open_for, query
    FROM pg_stat_activity WHERE pid = <pid>;"
If ending the blocker is safe, end it yourself (this check never does):
  {psql} -c "SELECT pg_terminate_backend(<pid>);"
Then find the code path that leaves a transaction open ("idle in transaction") and fix it."""
)
@pytest.mark.topics("database", "slow")
def test_no_long_transactions(db: Database, opscheck_config: Settings) -> None:
    expect(database.long_transactions(db, opscheck_config.thresholds.long_transaction_seconds))


@pytest.mark.severity("P3")
@pytest.mark.resolution(
    """Some statements are slow on average. Take the worst one listed and look at its plan:
  {psql} -c "EXPLAIN (ANALYZE, BUFFERS) <the query>;"
A "Seq Scan" over a large table usually means a missing index: add it in a migration
(alembic revision -m "add index" / {prisma} migrate dev), then deploy it:
  {alembic} upgrade head      (or: {prisma} migrate deploy)
To measure afresh once it is deployed:
  {psql} -c "SELECT pg_stat_statements_reset();"
"""
)
@pytest.mark.topics("slow", "database")
@pytest.mark.automates("* pg_stat_statements*", "*check database query times*")
def test_slow_queries(db: Database, opscheck_config: Settings) -> None:
    reason = database.statements_unavailable(db)
    if reason:
        pytest.skip(reason)
    expect(database.slow_queries(db, opscheck_config.thresholds.slow_query_ms))


@pytest.mark.severity("P3")
@pytest.mark.resolution(
    """Tables are read mostly by sequential scans over many rows: a query filters, joins or sorts on a column
without an index. Find the query: db.slow_queries lists the slowest statements (pg_stat_statements); look
at the plan of the one that reads the table named above:
  {psql} -c "EXPLAIN (ANALYZE, BUFFERS) <the query>;"
A "Seq Scan on <table>" with a Filter names the column. Add the index through a migration, never by hand:
  Alembic:  alembic revision -m "index <table>.<column>"  (op.create_index(..., postgresql_concurrently=True))
            {alembic} upgrade head
  Prisma:   @@index([column]) in schema.prisma, {prisma} migrate dev, then
            {prisma} migrate deploy
The counters add up since the last stats reset: after the deploy, SELECT pg_stat_reset(); measures afresh."""
)
@pytest.mark.topics("slow", "database")
@pytest.mark.automates("*add missing index*", "explain analyze *")
def test_missing_indexes(db: Database, opscheck_config: Settings) -> None:
    limits = opscheck_config.thresholds
    expect(db_health.missing_indexes(db, limits.seq_scan_rows, limits.seq_scan_percent))


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """PostgreSQL read data pages whose checksum did not match: data on disk is corrupt (a failing disk, memory,
or filesystem). Stop the damage from spreading and keep what is there before anything else:
  {compose} logs {db} | grep -i checksum        # which relation and block
  {compose} stop {db}                           # then copy the data volume, as it is, somewhere safe
Check the disk and memory of the host (dmesg | grep -i error), then restore from the last good backup:
  {compose} up -d {db}   # on a restored volume, and verify: pg_amcheck --all
Removing the volume (docker volume rm ...) loses the data: only after the copy, and only to restore."""
)
@pytest.mark.topics("database", "outage")
@pytest.mark.automates("*data corruption*")
def test_no_corruption(db: Database) -> None:
    reason = db_health.checksums_off(db)
    if reason:
        pytest.skip(reason)
    expect(db_health.no_corruption(db))
