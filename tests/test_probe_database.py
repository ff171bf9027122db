"""The database probes against a real PostgreSQL: causes told apart, a read-only session, every diagnosis."""

from __future__ import annotations

import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from dbhelpers import PLANTED_DB_PASSWORD, admin, alembic_folder, app_url, blackhole, make_database
from realservices import PG_BIN, Postgres, ServiceUnavailable, free_port, start_postgres

from pytest_opscheck.probes.diagnosis import database, migrations
from pytest_opscheck.probes.resource import migrations as migration_files
from pytest_opscheck.probes.resource.database import Database, open_url
from pytest_opscheck.probes.resource.migrations import MigrationsError
from pytest_opscheck.probes.result import Finding, TargetUnreachable
from pytest_opscheck.probes.transport.postgres import Address, classify, libpq_url, session_options


@pytest.fixture(scope="module")
def appdb(postgres: Postgres) -> str:
    """A database readable by role `app`, whose password is the planted one."""
    return make_database(postgres.url)


@pytest.fixture
def db(postgres: Postgres, appdb: str) -> Iterator[Database]:
    handle = open_url(app_url(postgres.url, appdb, PLANTED_DB_PASSWORD), 2)
    yield handle
    handle.close()


def cause_of(url: str, timeout: float = 1) -> str:
    with pytest.raises(TargetUnreachable) as caught:
        open_url(url, timeout).close()
    assert caught.value.target == "db"
    assert PLANTED_DB_PASSWORD not in str(caught.value)
    return caught.value.cause


def text_of(finding: Finding) -> str:
    return finding.cause + "\n".join(f"{k}\n{v}" for k, v in finding.evidence.items())


# --- reachability -------------------------------------------------------------------------------------


def test_session_is_read_only_autocommit_and_bounded(db: Database) -> None:
    finding = database.reachable(db)
    assert finding.ok
    assert finding.evidence["session"] == "transaction_read_only = on, statement_timeout = 2s"
    assert "as app: PostgreSQL 1" in finding.evidence["connection"]
    assert db.connection.autocommit
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        db.rows("CREATE TABLE should_not_exist (id int)")
    with pytest.raises(psycopg.errors.QueryCanceled):
        db.rows("SELECT pg_sleep(5)")
    assert db.rows("SELECT 1") == [(1,)], "a failed statement leaves no transaction open"


def test_wrong_and_missing_password(postgres: Postgres, appdb: str) -> None:
    where = f"127.0.0.1:{postgres.port}"
    wrong = app_url(postgres.url, appdb, "PLANTED-db-pw-wrong")
    assert cause_of(wrong) == f"authentication failed for user app on {where}"
    assert cause_of(f"postgresql://app@127.0.0.1:{postgres.port}/{appdb}") == (
        f"authentication failed for user app on {where}"
    )


def test_missing_database_and_database_closed_or_full(postgres: Postgres, appdb: str) -> None:
    where = f"127.0.0.1:{postgres.port}"
    assert cause_of(app_url(postgres.url, "nowhere", PLANTED_DB_PASSWORD)) == (
        f"database nowhere does not exist on {where}"
    )
    full, closed = make_database(postgres.url), make_database(postgres.url)
    with admin(postgres.url) as conn:
        conn.execute(f"ALTER DATABASE {full} CONNECTION LIMIT 0")
        conn.execute(f"ALTER DATABASE {closed} ALLOW_CONNECTIONS false")
    assert cause_of(app_url(postgres.url, full, PLANTED_DB_PASSWORD)) == (
        f"too many connections for database {full} on {where} (its CONNECTION LIMIT is reached)"
    )
    assert cause_of(app_url(postgres.url, closed, PLANTED_DB_PASSWORD)) == (
        f"database {closed} on {where} does not accept connections (ALLOW_CONNECTIONS false)"
    )


def test_refused_dns_and_tls(postgres: Postgres, appdb: str) -> None:
    port = free_port()
    assert cause_of(f"postgresql://app:{PLANTED_DB_PASSWORD}@127.0.0.1:{port}/x") == (
        f"connection refused by 127.0.0.1:{port}"
    )
    assert cause_of(f"postgresql://app:{PLANTED_DB_PASSWORD}@db.opscheck.invalid:5432/x") == (
        "DNS lookup failed for db.opscheck.invalid"
    )
    url = app_url(postgres.url, appdb, PLANTED_DB_PASSWORD) + "?sslmode=require"
    assert cause_of(url) == (
        f"TLS with 127.0.0.1:{postgres.port} failed: server does not support SSL, but SSL was required"
    )


def test_silent_port_times_out_within_the_probe_timeout() -> None:
    """psycopg alone waits at least 2 s (per address): the probe's own deadline holds it to 1 s."""
    with blackhole() as port:
        started = time.monotonic()
        cause = cause_of(f"postgresql://app:{PLANTED_DB_PASSWORD}@127.0.0.1:{port}/x", timeout=1)
        elapsed = time.monotonic() - started
    assert cause == f"timed out after 1 s connecting to 127.0.0.1:{port}"
    assert 0.9 < elapsed < 1.6


def test_starting_up_named_from_the_servers_words() -> None:
    """The startup window of a real server is too short to hit reliably; its message is PostgreSQL's own."""
    address = Address.from_url(f"postgresql://app:{PLANTED_DB_PASSWORD}@db:5432/appdb")
    message = 'connection failed: connection to server at "10.0.0.2", port 5432 failed: FATAL:  the database '
    assert classify(message + "system is starting up", None, address, 5) == "server on db:5432 is starting up"
    assert classify(message + "system is not yet accepting connections", None, address, 5) == (
        "server on db:5432 is starting up"
    )
    assert classify("anything", "57P03", address, 5) == "server on db:5432 is starting up"
    assert classify("anything", "53300", address, 5) == "too many connections on db:5432: max_connections reached"
    assert classify(message.replace("the database ", "something new"), None, address, 5) == (
        "cannot connect to db:5432: something new"
    )


@pytest.fixture(scope="module")
def spare_postgres() -> Iterator[Postgres]:
    """A throwaway cluster of our own, to fill up and to shut down."""
    try:
        server = start_postgres()
    except (ServiceUnavailable, OSError) as exc:
        pytest.skip(f"no second PostgreSQL cluster here: {exc}")
    if not server.started:
        pytest.skip("OPSCHECK_TEST_DATABASE_URL names a shared server: not filling or stopping it")
    try:
        yield server
    finally:
        server.stop()


def test_full_server_then_shutting_down(spare_postgres: Postgres) -> None:
    name = make_database(spare_postgres.url)
    url = app_url(spare_postgres.url, name, PLANTED_DB_PASSWORD)
    where = f"127.0.0.1:{spare_postgres.port}"
    held = []
    try:
        # max_connections 50, 3 reserved for superusers: 47 leave role app no slot.
        held = [admin(spare_postgres.url) for _ in range(47)]
        assert cause_of(url) == f"too many connections on {where}: max_connections reached"
        for conn in held[1:]:
            conn.close()
        del held[1:]
        answering = open_url(url, 2)
        assert answering.rows("SELECT 1") == [(1,)]
        answering.close()
        # A smart shutdown waits for the session still open and turns every new one away.
        assert spare_postgres.datadir is not None
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(spare_postgres.datadir),
             "-m", "smart", "-W", "stop"],
            check=True, capture_output=True, timeout=30,
        )
        deadline = time.monotonic() + 10
        while (cause := cause_of(url)) != f"server on {where} is shutting down" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cause == f"server on {where} is shutting down"
    finally:
        for conn in held:
            conn.close()


# --- migrations ---------------------------------------------------------------------------------------


def test_alembic_files_are_parsed_never_imported(tmp_path: Path) -> None:
    script = alembic_folder(tmp_path)
    (script / "versions" / "0006_side.py").write_text(
        textwrap.dedent(
            '''\
            """side table

            Revision ID: side
            """
            import the_users_app_that_is_not_here  # importing this file would fail
            raise SystemExit("imported!")
            revision: str = "side"
            down_revision: str | tuple[str, ...] | None = ("tip",)
            '''
        )
    )
    (script / "versions" / "__init__.py").write_text("")
    revisions = migration_files.alembic_revisions(script)
    assert migration_files.heads(revisions) == {"side"}
    assert revisions["merge1"].down_revisions == ("aaaa", "bbbb")
    assert revisions["base"].down_revisions == ()
    assert revisions["side"].message == "side table"
    (script / "versions" / "0005_tip.py").unlink()
    (script / "versions" / "0004_merge.py").unlink()
    (script / "versions" / "0006_side.py").unlink()
    assert migration_files.heads(migration_files.alembic_revisions(script)) == {"aaaa", "bbbb"}


def test_alembic_folder_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(MigrationsError, match="no versions folder"):
        migration_files.alembic_revisions(tmp_path / "nowhere")
    script = alembic_folder(tmp_path)
    (script / "versions" / "0009_copy.py").write_text('revision = "tip"\ndown_revision = "base"\n')
    with pytest.raises(MigrationsError, match=r"0009_copy.py: revision tip is also declared in 0005_tip.py"):
        migration_files.alembic_revisions(script)


def migrated(postgres: Postgres, *versions: str) -> Database:
    """A fresh database whose alembic_version holds `versions` (no table when none), as the probe sees it."""
    name = make_database(postgres.url)
    if versions:
        with admin(postgres.url, name) as conn:
            conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
            for version in versions:
                conn.execute("INSERT INTO alembic_version VALUES (%s)", (version,))
    return open_url(app_url(postgres.url, name, PLANTED_DB_PASSWORD), 2)


@pytest.mark.parametrize(
    ("versions", "ok", "cause", "pending"),
    [
        ((), False, "no alembic_version table: the database was never migrated: run alembic upgrade head", []),
        (("base",), False, "4 migration(s) not applied: database at base, head tip", ["aaaa", "bbbb", "merge1", "tip"]),
        (("aaaa",), False, "3 migration(s) not applied: database at aaaa, head tip", ["bbbb", "merge1", "tip"]),
        (("merge1",), False, "1 migration(s) not applied: database at merge1, head tip", ["tip"]),
        (("f00d",), False, "database is at f00d, unknown to alembic/versions (a newer deploy, or a branch not "
                           "merged here)", ["base", "aaaa", "bbbb", "merge1", "tip"]),
        (("tip",), True, "", []),
    ],
)
def test_alembic_current(
    postgres: Postgres, tmp_path: Path, versions: tuple[str, ...], ok: bool, cause: str, pending: list[str]
) -> None:
    script = alembic_folder(tmp_path)
    db = migrated(postgres, *versions)
    try:
        finding = migrations.alembic_current(db, script)
    finally:
        db.close()
    assert (finding.ok, finding.cause) == (ok, cause)
    listed = finding.evidence.get("pending", "").splitlines()[1:]
    assert sorted(line.split()[0] for line in listed) == sorted(pending)
    if "tip" in pending:
        assert any(line.startswith("tip") and "add index on items" in line for line in listed)
    if versions:
        assert finding.evidence["current"] == ", ".join(versions)
        assert finding.evidence["expected heads"] == "tip"


def test_alembic_two_heads_one_applied(postgres: Postgres, tmp_path: Path) -> None:
    script = alembic_folder(tmp_path)
    (script / "versions" / "0005_tip.py").unlink()
    (script / "versions" / "0004_merge.py").unlink()
    for versions, ok in ((("aaaa",), False), (("aaaa", "bbbb"), True)):
        db = migrated(postgres, *versions)
        try:
            finding = migrations.alembic_current(db, script)
        finally:
            db.close()
        assert finding.ok is ok
    assert not ok or finding.evidence["expected heads"] == "aaaa, bbbb"


PRISMA_TABLE = """CREATE TABLE _prisma_migrations (
    id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL, finished_at timestamptz,
    migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamptz,
    started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count integer NOT NULL DEFAULT 0)"""


def test_prisma_failed_rolled_back_and_missing(postgres: Postgres, tmp_path: Path) -> None:
    folder = tmp_path / "prisma" / "migrations"
    for migration in ("20240101_init", "20240201_items", "20240301_index", "20240401_tags"):
        (folder / migration).mkdir(parents=True)
        (folder / migration / "migration.sql").write_text("SELECT 1;")
    (folder / "migration_lock.toml").write_text('provider = "postgresql"\n')
    name = make_database(postgres.url)
    db = open_url(app_url(postgres.url, name, PLANTED_DB_PASSWORD), 2)
    try:
        assert migrations.prisma_current(db, folder).cause == (
            "no _prisma_migrations table: the database was never migrated: run npx prisma migrate deploy"
        )
        with admin(postgres.url, name) as conn:
            conn.execute(PRISMA_TABLE)
            conn.execute(
                "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, logs, rolled_back_at,"
                " started_at, applied_steps_count) VALUES"
                " ('1', 'c', now(), '20240101_init', NULL, NULL, now() - interval '4 min', 1),"
                # failed, then marked rolled back and applied again: resolved
                " ('2', 'c', NULL, '20240201_items', 'ERROR: lock timeout', now(), now() - interval '3 min', 0),"
                " ('3', 'c', now(), '20240201_items', NULL, NULL, now() - interval '2 min', 1),"
                # failed and left so
                " ('4', 'c', NULL, '20240301_index', 'ERROR: relation \"ix\" already exists', NULL, now(), 0),"
                # rolled back, never applied again: to deploy again (as Prisma reads it), not failed
                " ('5', 'c', NULL, '20240401_tags', 'ERROR: out of disk', now(), now(), 0)"
            )
        finding = migrations.prisma_current(db, folder)
        assert not finding.ok
        assert finding.cause == (
            "1 failed migration(s): 20240301_index (blocks migrate deploy); 1 not applied: 20240401_tags"
        )
        assert 'already exists' in finding.evidence["failed"]
        assert finding.evidence["pending"] == "20240401_tags"

        with admin(postgres.url, name) as conn:
            conn.execute("DELETE FROM _prisma_migrations WHERE id IN ('4', '5')")
            conn.execute("INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name) VALUES"
                         " ('6', 'c', now(), '20240301_index')")
        finding = migrations.prisma_current(db, folder)
        assert finding.cause == "1 not applied: 20240401_tags"

        with admin(postgres.url, name) as conn:
            conn.execute("INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name) VALUES"
                         " ('7', 'c', NULL, '20240401_tags')")
            conn.execute("UPDATE _prisma_migrations SET rolled_back_at = now() WHERE id = '7'")
        finding = migrations.prisma_current(db, folder)
        assert finding.cause == "1 not applied: 20240401_tags"
        assert "not applied, rolled back" in finding.evidence["not applied"]

        with admin(postgres.url, name) as conn:
            conn.execute("INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name) VALUES"
                         " ('8', 'c', now(), '20240401_tags'), ('9', 'c', now(), '20240501_newer')")
        finding = migrations.prisma_current(db, folder)
        assert finding.ok, finding
        assert finding.evidence["applied but not in migrations"] == "20240501_newer"
    finally:
        db.close()


# --- Prisma-style URLs: schema= and pool parameters ----------------------------------------------------

PRISMA_PARAMS = "connection_limit=5&pool_timeout=10&pgbouncer=true&socket_timeout=5&sslaccept=strict"


def test_prisma_url_read_as_libpq_reads_it() -> None:
    url, schema = libpq_url(f"postgresql://u:p%3Fw@db:5432/app?schema=blog&{PRISMA_PARAMS}&sslmode=disable")
    assert (url, schema) == ("postgresql://u:p%3Fw@db:5432/app?sslmode=disable", "blog")
    assert libpq_url(f"postgres://u:p@db/app?{PRISMA_PARAMS}") == ("postgres://u:p@db/app", None)
    assert libpq_url("postgresql://u:p@db/app?schema=My%20Blog&ssl=true&options=-c%20x%3D1") == (
        "postgresql://u:p@db/app?ssl=true&options=-c%20x%3D1", "My Blog"
    )
    assert libpq_url("postgresql://u:a?b@db/app?schema=s") == ("postgresql://u:a?b@db/app", "s")
    assert libpq_url("postgresql://u:p@db/app") == ("postgresql://u:p@db/app", None)
    assert libpq_url("host=db dbname=app") == ("host=db dbname=app", None)
    assert session_options("-cstatement_timeout=100", "blog", 2) == (
        "-c search_path=blog -cstatement_timeout=100 -c default_transaction_read_only=on -c statement_timeout=2000"
    )
    assert session_options(None, 'My "Blog"', 1).startswith('-c search_path="My\\ ""Blog"""')
    assert session_options("", None, 1) == "-c default_transaction_read_only=on -c statement_timeout=1000"


def prisma_schema(postgres: Postgres, tmp_path: Path, schema: str) -> tuple[str, Path]:
    """A database whose `schema` holds an up-to-date _prisma_migrations (none in public); its migrations folder."""
    folder = tmp_path / "prisma" / "migrations"
    (folder / "20240101_init").mkdir(parents=True)
    (folder / "20240101_init" / "migration.sql").write_text("SELECT 1;")
    name = make_database(postgres.url)
    quoted = '"' + schema.replace('"', '""') + '"'
    with admin(postgres.url, name) as conn:
        conn.execute(f"CREATE SCHEMA {quoted}")
        conn.execute(PRISMA_TABLE.replace(" _prisma_migrations", f" {quoted}._prisma_migrations", 1))
        conn.execute(f"INSERT INTO {quoted}._prisma_migrations (id, checksum, finished_at, migration_name)"
                     " VALUES ('1', 'c', now(), '20240101_init')")
        conn.execute(f"GRANT USAGE ON SCHEMA {quoted} TO app")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {quoted} TO app")
    return name, folder


def test_prisma_url_with_schema_and_pool_parameters(postgres: Postgres, tmp_path: Path) -> None:
    name, folder = prisma_schema(postgres, tmp_path, "blog")
    db = open_url(app_url(postgres.url, name, PLANTED_DB_PASSWORD) + f"?schema=blog&{PRISMA_PARAMS}", 2)
    try:
        assert db.schema == "blog"
        finding = database.reachable(db)
        assert finding.ok, finding
        assert finding.evidence["session"] == (
            "transaction_read_only = on, statement_timeout = 2s, search_path = blog (schema=blog)"
        )
        assert PLANTED_DB_PASSWORD not in text_of(finding)
        finding = migrations.prisma_current(db, folder)
        assert finding.ok, finding
        assert finding.evidence["applied"] == "1 of 1 migrations in migrations, latest 20240101_init"
    finally:
        db.close()
    plain = open_url(app_url(postgres.url, name, PLANTED_DB_PASSWORD) + f"?{PRISMA_PARAMS}", 2)
    try:
        assert plain.schema is None
        assert migrations.prisma_current(plain, folder).cause == (
            "no _prisma_migrations table: the database was never migrated: run npx prisma migrate deploy"
        )
    finally:
        plain.close()


def test_prisma_schema_merged_with_the_users_options(postgres: Postgres, tmp_path: Path) -> None:
    """The user's own options are kept and may set search_path themselves; read-only and the probe's
    statement timeout come last, so no option lifts them; the migrations table is looked up in the schema."""
    name, folder = prisma_schema(postgres, tmp_path, "blog")
    base = app_url(postgres.url, name, PLANTED_DB_PASSWORD)
    db = open_url(base + "?options=-cstatement_timeout%3D100%20-clock_timeout%3D100&schema=blog&pgbouncer=true", 2)
    try:
        assert db.rows("SELECT current_setting('search_path'), current_setting('lock_timeout'),"
                       " current_setting('statement_timeout'), current_setting('transaction_read_only')") == [
            ("blog", "100ms", "2s", "on")
        ]
    finally:
        db.close()
    options = "-csearch_path%3Dpublic%20-cdefault_transaction_read_only%3Doff%20-cstatement_timeout%3D0"
    db = open_url(f"{base}?schema=blog&options={options}", 2)
    try:
        assert db.rows("SELECT current_setting('search_path'), current_setting('transaction_read_only'),"
                       " current_setting('statement_timeout')") == [("public", "on", "2s")]
        assert migrations.prisma_current(db, folder).ok, "found in blog although search_path is public"
    finally:
        db.close()


def test_prisma_schema_quoted_and_missing(postgres: Postgres, tmp_path: Path) -> None:
    name, folder = prisma_schema(postgres, tmp_path, 'My "Blog"')
    base = app_url(postgres.url, name, PLANTED_DB_PASSWORD)
    db = open_url(f"{base}?schema=My%20%22Blog%22&{PRISMA_PARAMS}", 2)
    try:
        assert db.rows("SELECT current_setting('search_path')") == [('"My ""Blog"""',)]
        assert migrations.prisma_current(db, folder).ok
    finally:
        db.close()
    db = open_url(f"{base}?schema=shop", 2)
    try:
        assert migrations.prisma_current(db, folder).cause == (
            "no _prisma_migrations table in schema shop: the database was never migrated: run npx prisma migrate deploy"
        )
    finally:
        db.close()


def test_prisma_url_failures_name_the_cause_never_the_password(postgres: Postgres, appdb: str) -> None:
    where = f"127.0.0.1:{postgres.port}"
    wrong = app_url(postgres.url, appdb, "PLANTED-db-pw-wrong") + f"?schema=blog&{PRISMA_PARAMS}"
    assert cause_of(wrong) == f"authentication failed for user app on {where}"
    refused = f"postgresql://app:{PLANTED_DB_PASSWORD}@127.0.0.1:{free_port()}/x?schema=blog&{PRISMA_PARAMS}"
    assert cause_of(refused).startswith("connection refused by 127.0.0.1:")


# --- sessions, locks, connections, statements ---------------------------------------------------------


def test_own_session_is_not_a_long_transaction(postgres: Postgres) -> None:
    db = open_url(app_url(postgres.url, make_database(postgres.url), PLANTED_DB_PASSWORD), 2)
    try:
        finding = database.long_transactions(db, 0)
    finally:
        db.close()
    assert finding.ok, finding


def test_long_transaction_and_lock_wait(postgres: Postgres) -> None:
    name = make_database(postgres.url)
    with admin(postgres.url, name) as conn:
        conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO accounts VALUES (1, '')")
    holder, waiter = admin(postgres.url, name), admin(postgres.url, name)
    holder.autocommit = False
    holder.execute(f"UPDATE accounts SET note = '{PLANTED_DB_PASSWORD}' WHERE id = 1")
    holder_pid, waiter_pid = holder.info.backend_pid, waiter.info.backend_pid
    blocked = threading.Thread(target=lambda: waiter.execute("UPDATE accounts SET note = 'x' WHERE id = 1"))
    blocked.start()
    db = open_url(app_url(postgres.url, name, PLANTED_DB_PASSWORD), 2)
    try:
        time.sleep(2)
        finding = database.long_transactions(db, 1)
        healthy_limit = database.long_transactions(db, 3600)
    finally:
        holder.rollback()
        blocked.join(timeout=10)
        for conn in (holder, waiter, db):
            conn.close()
    assert not finding.ok
    assert finding.cause.startswith(
        f"2 transaction(s) open over 1 s (oldest: pid {holder_pid}, 2 s, idle in transaction)"
    )
    assert f"1 session(s) waiting on a lock held by pid {holder_pid} (idle in transaction " in finding.cause
    assert finding.cause.endswith("UPDATE accounts SET note = '…' WHERE id = 1)")  # its query, literals masked
    sessions = finding.evidence["sessions"]
    assert "UPDATE accounts SET note = '…' WHERE id = 1" in sessions
    assert f"{waiter_pid}" in sessions and "active" in sessions
    assert finding.evidence["locks"].startswith(f"pid {waiter_pid} (active ")
    assert f"waits on pid {holder_pid} (idle in transaction " in finding.evidence["locks"]
    assert PLANTED_DB_PASSWORD not in text_of(finding)
    assert not healthy_limit.ok and healthy_limit.cause.startswith("1 session(s) waiting on a lock")


def test_connections_headroom(db: Database) -> None:
    assert database.connections_headroom(db, 100).ok
    finding = database.connections_headroom(db, 1)
    assert not finding.ok
    used, limit = finding.cause.split(" connections")[0].split(" of ")
    assert int(used) >= 1 and limit == "50"
    assert "app" in finding.evidence["by database, user and state"]


@pytest.mark.parametrize("apps", [{"worker": 4, "backend": 1}, {"celery": 1, "api": 3}, {"": 3}])
def test_connections_headroom_names_who_holds_them(postgres: Postgres, apps: dict[str, int]) -> None:
    """Whoever holds the most connections is named (its application_name, user and client), not assumed to be
    the backend."""
    import psycopg

    name = make_database(postgres.url)
    url = app_url(postgres.url, name, PLANTED_DB_PASSWORD)
    held = [psycopg.connect(url, application_name=app, connect_timeout=3) for app, n in apps.items() for _ in range(n)]
    db = open_url(url, 2)
    try:
        finding = database.connections_headroom(db, 1)
    finally:
        for conn in (*held, db):
            conn.close()
    top = max(apps, key=lambda a: apps[a])
    named = f"application {top}, " if top else ""
    assert not finding.ok
    assert f"; most held by user app ({named}from 127.0.0.1): {apps[top]} of " in finding.cause, finding.cause
    assert [f.kind for f in finding.facts] == ["connections_full"]
    rows = finding.evidence["by holder (user, application_name, client address)"].splitlines()
    assert rows[1].split()[-1] == str(apps[top])


def test_slow_statements_found_and_extension_absent(postgres: Postgres) -> None:
    name = make_database(postgres.url)
    with admin(postgres.url, name) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute("SELECT pg_sleep(0.6)")
        conn.execute("SELECT count(*) FROM pg_class")
    db = open_url(app_url(postgres.url, name, PLANTED_DB_PASSWORD), 2)
    try:
        assert database.statements_unavailable(db) is None
        finding = database.slow_queries(db, 300)
        lenient = database.slow_queries(db, 5000)
    finally:
        db.close()
    assert not finding.ok
    assert finding.cause.startswith("1 statement(s) average over 300 ms (worst: 60")
    assert "ms, SELECT pg_sleep($1)); statistics since " in finding.cause and finding.cause.endswith(" s ago")
    assert finding.evidence["statistics since"].startswith(time.strftime("%Y-%m-%d", time.gmtime()))
    top = finding.evidence["top 10 statements by mean time"].splitlines()
    assert top[0].split() == ["calls", "mean", "ms", "query"]
    assert top[1].split()[0] == "1" and "SELECT pg_sleep($1)" in top[1]
    assert lenient.ok

    bare = open_url(app_url(postgres.url, make_database(postgres.url, with_statements=False), PLANTED_DB_PASSWORD), 2)
    try:
        reason = database.statements_unavailable(bare)
    finally:
        bare.close()
    assert reason is not None
    assert reason.startswith(f"pg_stat_statements is not installed in database {bare.address.dbname}: ")
    assert "shared_preload_libraries" in reason and "CREATE EXTENSION pg_stat_statements" in reason


def test_slow_statements_that_stopped_before_a_reset_are_not_counted(postgres: Postgres) -> None:
    """A slow job that ran and stopped, then the statistics reset (pg_stat_statements_reset()): no alarm, and the
    evidence says since when the statistics count."""
    name = make_database(postgres.url)
    url = app_url(postgres.url, name, PLANTED_DB_PASSWORD)
    with admin(postgres.url, name) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute("SELECT pg_sleep(0.4)")
    db = open_url(url, 2)
    try:
        before = database.slow_queries(db, 300)
        with admin(postgres.url, name) as conn:
            conn.execute("SELECT pg_stat_statements_reset()")
        after = database.slow_queries(db, 300)
    finally:
        db.close()
    assert not before.ok and "pg_sleep" in before.cause
    assert after.ok, after
    since = after.evidence["statistics since"]
    assert since.endswith("(pg_stat_statements_info.stats_reset: what ran before is not counted)")
    assert " s ago" in since and before.evidence["statistics since"] <= since


def test_query_text_masks_literals_and_cuts() -> None:
    assert database.query_text("SELECT *\n  FROM t WHERE pw = 'x''y' AND id = 3") == (
        "SELECT * FROM t WHERE pw = '…' AND id = 3"
    )
    assert database.query_text("UPDATE t SET a = 'unterminated secr") == "UPDATE t SET a = '…'"
    cut = database.query_text("SELECT " + "x, " * 200)
    assert len(cut) == database.QUERY_TEXT_LIMIT and cut.endswith("…")
