"""The expected schema version, read from migration files (never importing the user's application),
compared with what the database records: Alembic's `alembic_version`, Prisma's `_prisma_migrations`."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from .database import Database
from .result import Finding, table


class MigrationsError(Exception):
    """The migration folder cannot be read; the message names the file."""


@dataclass(frozen=True)
class Revision:
    """One Alembic revision as its file declares it."""

    revision: str
    down_revisions: tuple[str, ...]
    message: str
    path: Path


def alembic_revisions(script_location: Path) -> dict[str, Revision]:
    """Every revision of `script_location/versions`, parsed with `ast` (the files are not run)."""
    versions = script_location / "versions"
    if not versions.is_dir():
        raise MigrationsError(f"{versions}: no versions folder (check migrations.script_location)")
    revisions: dict[str, Revision] = {}
    for path in sorted(versions.rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (OSError, SyntaxError, UnicodeDecodeError) as exc:
            raise MigrationsError(f"{path}: cannot parse: {exc}") from None
        values = _assignments(tree)
        revision = values.get("revision")
        if not isinstance(revision, str):
            continue
        down = values.get("down_revision")
        downs = tuple(d for d in down if isinstance(d, str)) if isinstance(down, tuple | list) else (
            (down,) if isinstance(down, str) else ()
        )
        if revision in revisions:
            raise MigrationsError(f"{path}: revision {revision} is also declared in {revisions[revision].path.name}")
        doc = ast.get_docstring(tree) or ""
        revisions[revision] = Revision(revision, downs, doc.strip().splitlines()[0] if doc.strip() else "", path)
    return revisions


def _assignments(tree: ast.Module) -> dict[str, object]:
    values: dict[str, object] = {}
    for node in tree.body:
        target = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target.id, node.value
        if target in ("revision", "down_revision"):
            try:
                values[target] = ast.literal_eval(value)
            except (ValueError, TypeError):  # computed at import time: unreadable without running the file
                continue
    return values


def heads(revisions: dict[str, Revision]) -> set[str]:
    """Revisions no other revision builds on."""
    parents = {down for rev in revisions.values() for down in rev.down_revisions}
    return set(revisions) - parents


def ancestors(revisions: dict[str, Revision], starts: set[str]) -> set[str]:
    """`starts` and every revision they build on."""
    seen: set[str] = set()
    stack = list(starts)
    while stack:
        current = stack.pop()
        if current in seen or current not in revisions:
            continue
        seen.add(current)
        stack.extend(revisions[current].down_revisions)
    return seen


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
            [[r, revisions[r].message, revisions[r].path.name] for r in _in_order(revisions, pending)],
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


def _in_order(revisions: dict[str, Revision], wanted: set[str]) -> list[str]:
    """`wanted`, oldest first."""
    ordered: list[str] = []

    def visit(rev: str) -> None:
        if rev in ordered or rev not in revisions:
            return
        for down in revisions[rev].down_revisions:
            visit(down)
        ordered.append(rev)

    for rev in sorted(wanted):
        visit(rev)
    return [r for r in ordered if r in wanted]


def prisma_current(db: Database, migrations_dir: Path) -> Finding:
    """No failed or rolled-back Prisma migration, and every folder of `migrations_dir` applied.

    A failed or rolled-back row no longer counts once a later row of the same migration finished
    (what `prisma migrate resolve` then `prisma migrate deploy` leave behind).
    """
    if not migrations_dir.is_dir():
        raise MigrationsError(f"{migrations_dir}: no Prisma migrations folder (check migrations.migrations_dir)")
    expected = sorted(p.name for p in migrations_dir.iterdir() if p.is_dir() and (p / "migration.sql").exists())
    if not db.rows("SELECT to_regclass('_prisma_migrations') IS NOT NULL")[0][0]:
        return Finding.failed(
            "no _prisma_migrations table: the database was never migrated: run npx prisma migrate deploy",
            {"expected": "\n".join(expected) or "(none)"},
        )
    rows = db.rows(
        "SELECT migration_name, finished_at IS NOT NULL, rolled_back_at IS NOT NULL, logs IS NOT NULL,"
        " left(coalesce(logs, ''), 200) FROM _prisma_migrations ORDER BY started_at, migration_name"
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
