"""The migration head in the fingerprint, on a real PostgreSQL: a real Alembic upgrade applied after the green
sweep, and a Prisma migration recorded in `_prisma_migrations` (as Prisma Migrate writes it), each listed as the
head change of the failing sweep that follows, with the database password absent from the state file."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from dbhelpers import PLANTED_DB_PASSWORD, admin, app_url, make_database
from realservices import Postgres

from pytest_opscheck import targets as targets_module
from pytest_opscheck.changes import History
from pytest_opscheck.config import settings_from_table
from pytest_opscheck.model import CheckRecord, Summary, summarize

pytest.importorskip("alembic")
ENVIRON = {"OPSCHECK_TEST_DB_PASSWORD": PLANTED_DB_PASSWORD}


def record(check_id: str, outcome: str) -> CheckRecord:
    return CheckRecord(check_id, f"x::{check_id}", "P2", outcome, 0.1, "", f"Steps for {check_id}", service="db")


def sweep(history: History, settings: Any, outcome: str) -> Summary:
    builtin = getattr(targets_module, "BUILTIN", None)
    targets = targets_module.Targets(settings, builtin) if builtin is not None else targets_module.Targets(settings)
    targets.prefetch()
    try:
        return history.update(summarize([record("db.migrations_current", outcome)]), targets)
    finally:
        targets.close()


def alembic_config(root: Path, url: str) -> Any:
    """A real Alembic project (`alembic init`'s generic template) on `url`, with two revisions."""
    from alembic import command
    from alembic.config import Config

    ini = str(root / "alembic.ini")
    command.init(Config(ini), str(root / "migrations"), template="generic")
    config = Config(ini)
    config.set_main_option("script_location", str(root / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("postgresql://", "postgresql+psycopg://").replace("%", "%%"))
    command.revision(config, "create items", rev_id="a1b2c3d4e5f6")
    command.revision(config, "add items.price", rev_id="f6e5d4c3b2a1")
    return config


def test_alembic_upgrade_after_the_green_sweep_is_listed(postgres: Postgres, tmp_path: Path) -> None:
    from alembic import command

    name = make_database(postgres.url)
    config = alembic_config(tmp_path, f"{postgres.url.rsplit('/', 1)[0]}/{name}")
    command.upgrade(config, "a1b2c3d4e5f6")
    settings = settings_from_table({"database_url": app_url(postgres.url, name)}, tmp_path / "opscheck.toml",
                                   environ=ENVIRON)
    state = tmp_path / "state.json"
    history = History(state, settings)
    green = sweep(history, settings, "passed")

    command.upgrade(config, "head")
    failing = sweep(history, settings, "failed")
    heads = [c for c in failing.changes if c.what.endswith(": migration head")]
    assert len(heads) == 1
    assert (heads[0].before, heads[0].after) == ("alembic a1b2c3d4e5f6", "alembic f6e5d4c3b2a1")
    assert heads[0].at is not None and heads[0].at >= green.last_green  # type: ignore[operator]
    assert PLANTED_DB_PASSWORD not in state.read_text()

    # back at the green head (a downgrade): the head of the green sweep is no change
    command.downgrade(config, "a1b2c3d4e5f6")
    assert not [c for c in sweep(history, settings, "failed").changes if c.what.endswith("migration head")]


def test_prisma_migration_recorded_after_the_green_sweep_is_listed(postgres: Postgres, tmp_path: Path) -> None:
    name = make_database(postgres.url)
    with admin(postgres.url, name) as conn:
        conn.execute("CREATE SCHEMA blog")
        conn.execute('CREATE TABLE blog."_prisma_migrations" ("id" VARCHAR(36) PRIMARY KEY NOT NULL, '
                     '"checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ, "migration_name" VARCHAR(255) '
                     'NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ, "started_at" TIMESTAMPTZ NOT NULL '
                     'DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0)')
        conn.execute("GRANT USAGE ON SCHEMA blog TO app")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA blog TO app")

    def migrate(migration: str, finished: str) -> None:
        with admin(postgres.url, name) as conn:
            conn.execute('INSERT INTO blog."_prisma_migrations" (id, checksum, finished_at, migration_name, '
                         "applied_steps_count) VALUES (%s, %s, %s::timestamptz, %s, 1)",
                         (str(uuid.uuid4()), "0" * 64, finished, migration))

    migrate("20240101000000_init", "2026-01-01T10:00:00Z")
    url = app_url(postgres.url, name) + "?schema=blog&connection_limit=5"
    settings = settings_from_table({"database_url": url, "migrations": {"tool": "prisma"}}, tmp_path / "opscheck.toml",
                                   environ=ENVIRON)
    history = History(tmp_path / "state.json", settings)
    sweep(history, settings, "passed")
    migrate("20261206140200_add_price", "2026-12-06T14:02:00Z")
    failing = sweep(history, settings, "failed")
    head = next(c for c in failing.changes if c.what.endswith(": migration head"))
    assert (head.before, head.after) == ("prisma 20240101000000_init", "prisma 20261206140200_add_price")
    assert head.at == "2026-12-06T14:02:00Z"  # when Prisma finished it, not when the sweep saw it
