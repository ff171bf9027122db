"""Migrations applied: what the database records (Alembic's `alembic_version`, Prisma's `_prisma_migrations`)
against what the migration files expect."""

from __future__ import annotations

from pathlib import Path

from ..resource.database import Database
from ..resource.migrations import alembic_revisions, ancestors, heads, in_order, prisma_migrations
from ..result import Finding, table


def alembic_current(db: Database, script_location: Path) -> Finding:
    """The database's revisions equal the heads of the migration folder."""
    revisions = alembic_revisions(script_location)
    expected = heads(revisions)
    if not db.rows("SELECT to_regclass('alembic_version') IS NOT NULL")[0][0]:
        return Finding.failed(
            "no alembic_version table: the database was never migrated: run alembic upgrade head",
            {"expected heads": ", ".join(sorted(expected)) or "(none)"},
        )
    current = {row[0] for row in db.rows("SELECT version_num FROM alembic_version")}
    pending = ancestors(revisions, expected) - ancestors(revisions, current)
    unknown = current - set(revisions)
    evidence = {
        "current": ", ".join(sorted(current)) or "(empty)",
        "expected heads": ", ".join(sorted(expected)) or "(none)",
    }
    if pending:
        evidence["pending"] = table(
            ["revision", "message", "file"],
            [[r, revisions[r].message, revisions[r].path.name] for r in in_order(revisions, pending)],
        )
    if unknown:
        evidence["unknown to the migration folder"] = ", ".join(sorted(unknown))
    if current == expected:
        return Finding.passed(evidence)
    if unknown:
        return Finding.failed(
            f"database is at {', '.join(sorted(unknown))}, unknown to {script_location.name}/versions "
            "(a newer deploy, or a branch not merged here)",
            evidence,
        )
    at = ", ".join(sorted(current)) or "no revision"
    head = ", ".join(sorted(expected))
    if not pending:
        return Finding.failed(f"database at {at}, but the head of {script_location.name}/versions is {head}", evidence)
    return Finding.failed(f"{len(pending)} migration(s) not applied: database at {at}, head {head}", evidence)


def prisma_current(db: Database, migrations_dir: Path) -> Finding:
    """No failed or rolled-back Prisma migration, and every folder of `migrations_dir` applied.

    A failed or rolled-back row no longer counts once a later row of the same migration finished
    (what `prisma migrate resolve` then `prisma migrate deploy` leave behind).
    """
    from psycopg import sql

    expected = prisma_migrations(migrations_dir)
    # In the URL's schema= when it has one (Prisma's own place for it), else wherever search_path finds it.
    table_name = sql.Identifier(*([db.schema] if db.schema else []), "_prisma_migrations")
    if not db.rows("SELECT to_regclass(%s) IS NOT NULL", (table_name.as_string(db.connection),))[0][0]:
        where = f" in schema {db.schema}" if db.schema else ""
        return Finding.failed(
            f"no _prisma_migrations table{where}: the database was never migrated: run npx prisma migrate deploy",
            {"expected": "\n".join(expected) or "(none)"},
        )
    rows = db.rows(
        sql.SQL(
            "SELECT migration_name, finished_at IS NOT NULL, rolled_back_at IS NOT NULL, logs IS NOT NULL,"
            " left(coalesce(logs, ''), 200) FROM {} ORDER BY started_at, migration_name"
        ).format(table_name)
    )
    applied = {name for name, finished, rolled_back, _, _ in rows if finished and not rolled_back}
    failed = {
        name: log
        for name, finished, rolled_back, has_logs, log in rows
        if not finished and (not rolled_back or has_logs) and name not in applied
    }
    rolled = list(dict.fromkeys(n for n, _, back, _, _ in rows if back and n not in applied and n not in failed))
    missing = [name for name in expected if name not in applied]
    unknown = sorted(applied - set(expected))
    evidence = {
        "applied": f"{len(applied)} of {len(expected)} migrations in {migrations_dir.name}"
        + (f", latest {max(applied & set(expected))}" if applied & set(expected) else ""),
    }
    if failed:
        logs = [[name, " ".join(log.split()) or "-"] for name, log in failed.items()]
        evidence["failed"] = table(["migration", "log"], logs)
    if rolled:
        evidence["rolled back"] = "\n".join(rolled)
    if missing:
        evidence["pending"] = "\n".join(missing)
    if unknown:
        evidence[f"applied but not in {migrations_dir.name}"] = "\n".join(unknown)
    problems = []
    if failed:
        problems.append(f"{len(failed)} failed migration(s): {', '.join(failed)}")
    if rolled:
        problems.append(f"{len(rolled)} rolled back: {', '.join(rolled)}")
    if missing:
        problems.append(f"{len(missing)} not applied: {', '.join(missing)}")
    if problems:
        return Finding.failed("; ".join(problems), evidence)
    return Finding.passed(evidence)
