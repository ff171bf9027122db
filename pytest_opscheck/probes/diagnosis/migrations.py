"""Migrations applied: what the database records (Alembic's `alembic_version`, Prisma's `_prisma_migrations`,
told apart in `prisma.py`) against what the migration files expect."""

from __future__ import annotations

from pathlib import Path

from ...model import Fact
from .. import facts
from ..resource.database import Database
from ..resource.migrations import alembic_revisions, ancestors, heads, in_order
from ..result import Finding, table
from .prisma import prisma_current

__all__ = ["alembic_current", "prisma_current"]


def alembic_current(db: Database, script_location: Path) -> Finding:
    """The database's revisions equal the heads of the migration folder."""
    revisions = alembic_revisions(script_location)
    expected = heads(revisions)
    if not db.rows("SELECT to_regclass('alembic_version') IS NOT NULL")[0][0]:
        return Finding.failed(
            "no alembic_version table: the database was never migrated: run alembic upgrade head",
            {"expected heads": ", ".join(sorted(expected)) or "(none)"},
            facts=(Fact(facts.MIGRATIONS_BEHIND, db.address.dbname, "never migrated"),),
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
            facts=(Fact(facts.MIGRATIONS_AHEAD, db.address.dbname, f"at {', '.join(sorted(unknown))}"),),
        )
    at = ", ".join(sorted(current)) or "no revision"
    head = ", ".join(sorted(expected))
    if not pending:
        return Finding.failed(f"database at {at}, but the head of {script_location.name}/versions is {head}", evidence,
                              facts=(Fact(facts.MIGRATIONS_AHEAD, db.address.dbname, f"at {at}, head {head}"),))
    return Finding.failed(f"{len(pending)} migration(s) not applied: database at {at}, head {head}", evidence,
                          facts=(Fact(facts.MIGRATIONS_BEHIND, db.address.dbname, f"{len(pending)} not applied"),))
