"""A NestJS + Prisma app's database as Prisma leaves it: its tables and `_prisma_migrations` in the schema of a
Prisma URL (`?schema=blog` with pool parameters), each migration state told apart with its own command.

The migrations are Prisma-generated SQL applied with the schema's search_path, and each row is what Prisma
Migrate writes (checksum = sha256 of the script; finished_at, rolled_back_at, logs), against a real
PostgreSQL. A decoy `public."User"` shows the lookups stay in the URL's schema.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from dbhelpers import PLANTED_DB_PASSWORD, admin, app_url, make_database
from realservices import Postgres

from pytest_opscheck.probes.diagnosis.prisma import prisma_current
from pytest_opscheck.probes.resource.database import open_url
from pytest_opscheck.probes.resource.prisma import created_by

PRISMA_PARAMS = "connection_limit=5&pool_timeout=10&pgbouncer=true&socket_timeout=5&sslaccept=strict"
INIT, POSTS, NAME = "20240101000000_init", "20240201000000_posts", "20240301000000_user_name"
MIGRATIONS = {
    INIT: """-- CreateEnum
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');

-- CreateTable
CREATE TABLE "User" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,
    "role" "Role" NOT NULL DEFAULT 'USER',

    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
""",
    POSTS: """-- CreateTable
CREATE TABLE "Post" (
    "id" SERIAL NOT NULL,
    "title" TEXT NOT NULL,
    "authorId" INTEGER NOT NULL,

    CONSTRAINT "Post_pkey" PRIMARY KEY ("id")
);

-- AddForeignKey
ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User"("id") """ \
        """ON DELETE RESTRICT ON UPDATE CASCADE;
""",
    NAME: """-- AlterTable
ALTER TABLE "User" ADD COLUMN     "name" TEXT;
""",
}
# Prisma Migrate's own table (schema-engine's migration persistence for PostgreSQL).
PRISMA_TABLE = """CREATE TABLE blog."_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0)"""


def migrations_folder(root: Path) -> Path:
    folder = root / "services" / "api" / "prisma" / "migrations"
    for name, script in MIGRATIONS.items():
        (folder / name).mkdir(parents=True)
        (folder / name / "migration.sql").write_text(script)
    (folder / "migration_lock.toml").write_text('provider = "postgresql"\n')
    return folder


class Blog:
    """A database whose schema `blog` is migrated the way `prisma migrate deploy` does it, step by step."""

    def __init__(self, postgres: Postgres) -> None:
        self.postgres = postgres
        self.name = make_database(postgres.url)
        with self.admin() as conn:
            conn.execute("CREATE SCHEMA blog")
            conn.execute("GRANT USAGE ON SCHEMA blog TO app")
            conn.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA blog GRANT SELECT ON TABLES TO app")
            conn.execute(PRISMA_TABLE)

    def admin(self) -> Any:
        return admin(self.postgres.url, self.name)

    @property
    def url(self) -> str:
        return app_url(self.postgres.url, self.name, PLANTED_DB_PASSWORD) + f"?schema=blog&{PRISMA_PARAMS}"

    def run(self, migration: str) -> None:
        """The migration's SQL, as Prisma runs it: search_path set to the URL's schema."""
        with self.admin() as conn:
            conn.execute("SET search_path = blog")
            conn.execute(MIGRATIONS[migration])

    def record(self, migration: str, finished: bool = True, logs: str | None = None) -> None:
        checksum = hashlib.sha256(MIGRATIONS[migration].encode()).hexdigest()
        with self.admin() as conn:
            conn.execute(
                'INSERT INTO blog."_prisma_migrations" (id, checksum, finished_at, migration_name, logs,'
                " applied_steps_count) VALUES (%s, %s, CASE WHEN %s THEN now() END, %s, %s, %s)",
                (str(uuid.uuid4()), checksum, finished, migration, logs, int(finished)),
            )

    def deploy(self, migration: str) -> None:
        self.run(migration)
        self.record(migration)

    def check(self, folder: Path) -> Any:
        db = open_url(self.url, 2)
        try:
            assert db.schema == "blog"
            return prisma_current(db, folder, "cd services/api && npx prisma")
        finally:
            db.close()


def test_what_each_migration_creates_is_read_off_its_sql() -> None:
    assert [str(c) for c in created_by(MIGRATIONS[INIT])] == ["Role", "User", "User_email_key"]
    assert [str(c) for c in created_by(MIGRATIONS[POSTS])] == ["Post"]
    assert [str(c) for c in created_by(MIGRATIONS[NAME])] == ["User.name"]
    assert [str(c) for c in created_by('CREATE TABLE IF NOT EXISTS shop."Order" (id int); -- x;\n'
                                       "ALTER TABLE Items RENAME COLUMN a TO b")] == ["shop.Order", "items.b"]


def test_healthy_pending_unrecorded_and_failed_are_told_apart(postgres: Postgres, tmp_path: Path) -> None:
    folder = migrations_folder(tmp_path)
    blog = Blog(postgres)

    # never migrated: no migration ran, nothing recorded
    with blog.admin() as conn:
        conn.execute('DROP TABLE blog."_prisma_migrations"')
    assert blog.check(folder).cause == (
        "no _prisma_migrations table in schema blog: the database was never migrated: "
        "run cd services/api && npx prisma migrate deploy"
    )
    with blog.admin() as conn:
        conn.execute(PRISMA_TABLE)

    # one pending; a decoy User(name) in public must not count as the migration having run
    with blog.admin() as conn:
        conn.execute('CREATE TABLE public."User" (id int, name text)')
    blog.deploy(INIT)
    blog.deploy(POSTS)
    finding = blog.check(folder)
    assert finding.cause == f"1 not applied: {NAME}"
    assert finding.evidence["pending"] == NAME
    assert "none of it: User.name" in finding.evidence["not applied"]
    commands = finding.evidence["commands to run"]
    assert commands.splitlines() == [
        "cd services/api && npx prisma migrate status", "cd services/api && npx prisma migrate deploy",
    ]

    # failed: started, never finished, its log kept; nothing of it in the database
    blog.record(NAME, finished=False, logs='ERROR: canceling statement due to lock timeout')
    finding = blog.check(folder)
    assert finding.cause == f"1 failed migration(s): {NAME} (blocks migrate deploy)"
    assert "lock timeout" in finding.evidence["failed"]
    assert finding.evidence["commands to run"].splitlines()[1:] == [
        f"# {NAME} failed: fix what its log says, then mark it rolled back and deploy again",
        f"cd services/api && npx prisma migrate resolve --rolled-back {NAME}",
        "cd services/api && npx prisma migrate deploy",
    ]

    # `migrate resolve --rolled-back`: the row is rolled back, the migration is to be deployed again
    with blog.admin() as conn:
        conn.execute('UPDATE blog."_prisma_migrations" SET rolled_back_at = now() WHERE finished_at IS NULL')
    finding = blog.check(folder)
    assert finding.cause == f"1 not applied: {NAME}"
    assert "not applied, rolled back" in finding.evidence["not applied"]

    # its SQL ran by hand but no row records it: deploy would fail on "already exists"
    blog.run(NAME)
    finding = blog.check(folder)
    assert finding.cause == (
        f"1 applied without a row in _prisma_migrations in schema blog (its tables exist): {NAME}"
    )
    assert f"cd services/api && npx prisma migrate resolve --applied {NAME}" in finding.evidence["commands to run"]

    # `migrate resolve --applied`: healthy
    blog.record(NAME)
    finding = blog.check(folder)
    assert finding.ok, finding
    assert finding.evidence["applied"] == f"3 of 3 migrations in migrations, latest {NAME}"

    # a migration edited after it was applied is said (deploy ignores it; dev would complain)
    (folder / POSTS / "migration.sql").write_text(MIGRATIONS[POSTS] + "\n-- edited\n")
    finding = blog.check(folder)
    assert finding.ok and finding.evidence["changed since applied (checksum differs)"] == POSTS


def test_a_row_missing_while_its_tables_exist(postgres: Postgres, tmp_path: Path) -> None:
    folder = migrations_folder(tmp_path)
    blog = Blog(postgres)
    blog.deploy(INIT)
    blog.run(POSTS)  # applied without its row
    blog.deploy(NAME)
    finding = blog.check(folder)
    assert finding.cause == (
        f"1 applied without a row in _prisma_migrations in schema blog (its tables exist): {POSTS}"
    )
    assert "all it creates exists: Post" in finding.evidence["not applied"]
    assert "pending" not in finding.evidence
    assert "migrate resolve --rolled-back" not in finding.evidence["commands to run"]


def test_a_database_built_without_prisma_migrate_is_to_baseline(postgres: Postgres, tmp_path: Path) -> None:
    folder = migrations_folder(tmp_path)
    blog = Blog(postgres)
    with blog.admin() as conn:
        conn.execute('DROP TABLE blog."_prisma_migrations"')
    blog.run(INIT)  # db push, or a restored dump: the tables without Prisma's record
    finding = blog.check(folder)
    assert finding.cause == (
        f"no _prisma_migrations table in schema blog, but the tables of {INIT} exist: Prisma Migrate does not "
        f"manage this database yet: baseline it with cd services/api && npx prisma migrate resolve --applied {INIT}"
    )


def test_sweep_with_a_prisma_url_names_each_state_and_its_command(
    pytester: pytest.Pytester, postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the plugin: the URL's schema and pool parameters from `.env`, the command rendered with the
    configured migrations folder, and the password nowhere."""
    folder = migrations_folder(pytester.path)
    blog = Blog(postgres)
    blog.deploy(INIT)
    blog.record(POSTS, finished=False, logs='ERROR: relation "Post" already exists')
    monkeypatch.delenv("DATABASE_URL", raising=False)
    (pytester.path / ".env").write_text(
        f"POSTGRES_PASSWORD={PLANTED_DB_PASSWORD}\n"
        f"DATABASE_URL=postgresql://app:${{POSTGRES_PASSWORD}}@127.0.0.1:{postgres.port}/{blog.name}"
        f"?schema=blog&{PRISMA_PARAMS}\n"
    )
    pytester.makefile(".toml", opscheck=(
        'database_url = "${DATABASE_URL}"\n'
        f'migrations = {{ tool = "prisma", migrations_dir = "{folder.relative_to(pytester.path)}" }}\n'
    ))
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-k", "db.reachable or migrations_current",
                                "--opscheck-json", "out.json")
    out = (pytester.path / "out.json").read_text()
    assert PLANTED_DB_PASSWORD not in result.stdout.str() + out
    records = {r["id"]: r for r in json.loads(out)["checks"]}
    assert records["db.reachable"]["outcome"] == "passed"
    record = records["db.migrations_current"]
    assert record["message"] == f"1 failed migration(s): {POSTS} (blocks migrate deploy); 1 not applied: {NAME}"
    assert f"cd services/api && npx prisma migrate resolve --rolled-back {POSTS}" in record["evidence"][
        "commands to run"]
    assert "cd services/api && npx prisma migrate deploy" in record["resolution"]
    assert "cd backend" not in record["resolution"]
