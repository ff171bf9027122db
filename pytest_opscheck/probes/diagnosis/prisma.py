"""Prisma migrations, told apart as Prisma Migrate tells them (`prisma migrate status` / `migrate deploy`):

- applied: a row of `_prisma_migrations` finished and not rolled back;
- failed: a row neither finished nor rolled back; it blocks `migrate deploy` until it is resolved;
- not applied: no row, or only rolled-back ones (`deploy` applies it again). Whether it really never ran
  is read off the database: when everything its SQL creates is there, it ran without being recorded (a
  deploy by hand, `db push`, a restored dump), and `deploy` would fail on "already exists": it is to be
  recorded with `migrate resolve --applied`, not run again;
- no migrations table at all: never migrated, or, when the first migration's tables are there, a database
  Prisma Migrate does not manage yet (to baseline).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ...model import Fact
from .. import facts
from ..resource.database import Database
from ..resource.prisma import Created, PrismaMigration, prisma_folder
from ..result import Finding, table


@dataclass
class _Row:
    applied: bool = False
    failed_log: str | None = None
    rolled_back: bool = False
    checksums: set[str] = field(default_factory=set)


def prisma_current(db: Database, migrations_dir: Path, prisma: str = "npx prisma") -> Finding:
    """Every migration of `migrations_dir` applied, none failed; each other state named with its command.

    `prisma` is the CLI as the user runs it (`cd backend && npx prisma`), for the commands in the evidence.
    """
    from psycopg import sql

    migrations = prisma_folder(migrations_dir)
    names = [m.name for m in migrations]
    # In the URL's schema= when it has one (Prisma's own place for it), else wherever search_path finds it.
    table_name = sql.Identifier(*([db.schema] if db.schema else []), "_prisma_migrations")
    where = f" in schema {db.schema}" if db.schema else ""
    if not db.rows("SELECT to_regclass(%s) IS NOT NULL", (table_name.as_string(db.connection),))[0][0]:
        return _unmanaged(db, migrations, where, prisma)
    rows: dict[str, _Row] = {}
    for name, checksum, finished, rolled_back, log in db.rows(
        sql.SQL(
            "SELECT migration_name, checksum, finished_at IS NOT NULL, rolled_back_at IS NOT NULL,"
            " left(coalesce(logs, ''), 200) FROM {} ORDER BY started_at, migration_name"
        ).format(table_name)
    ):
        row = rows.setdefault(name, _Row())
        row.rolled_back |= rolled_back
        if finished and not rolled_back:
            row.applied = True
            row.checksums.add(checksum)
        elif not finished and not rolled_back:
            row.failed_log = " ".join(log.split()) or "-"
    failed = [m for m in migrations if rows.get(m.name, _Row()).failed_log is not None]
    unapplied = [m for m in migrations if m not in failed and not rows.get(m.name, _Row()).applied]
    found = _existing(db, [*failed, *unapplied])
    states = {m.name: _state(m, found) for m in unapplied}
    applied = [n for n in names if rows.get(n, _Row()).applied]
    evidence = {
        "applied": f"{len(applied)} of {len(names)} migrations in {migrations_dir.name}"
        + (f", latest {applied[-1]}" if applied else ""),
    }
    if failed:
        evidence["failed"] = table(["migration", "log"], [[m.name, rows[m.name].failed_log or "-"] for m in failed])
    by_state: dict[str, list[str]] = {"unrecorded": [], "partial": [], "pending": []}
    for name, (state, _) in states.items():
        by_state[state].append(name)
    if unapplied:
        evidence["not applied"] = table(
            ["migration", "state", "in the database"],
            [[m.name, _STATE_WORDS[states[m.name][0]] + (", rolled back" if rows.get(m.name, _Row()).rolled_back
                                                          else ""), states[m.name][1]] for m in unapplied],
        )
    if by_state["pending"]:
        evidence["pending"] = "\n".join(by_state["pending"])
    unknown = sorted(n for n, row in rows.items() if row.applied and n not in names)
    if unknown:
        evidence[f"applied but not in {migrations_dir.name}"] = "\n".join(unknown)
    edited = [m.name for m in migrations if rows.get(m.name, _Row()).checksums
              and not any(m.matches(c) for c in rows[m.name].checksums)]
    if edited:
        evidence["changed since applied (checksum differs)"] = "\n".join(edited)
    problems = []
    if failed:
        problems.append(f"{len(failed)} failed migration(s): {', '.join(m.name for m in failed)} "
                        "(blocks migrate deploy)")
    if by_state["unrecorded"]:
        problems.append(f"{len(by_state['unrecorded'])} applied without a row in _prisma_migrations{where} "
                        f"(its tables exist): {', '.join(by_state['unrecorded'])}")
    if by_state["partial"]:
        problems.append(f"{len(by_state['partial'])} partly applied: {', '.join(by_state['partial'])}")
    if by_state["pending"]:
        problems.append(f"{len(by_state['pending'])} not applied: {', '.join(by_state['pending'])}")
    if not problems:
        return Finding.passed(evidence)
    evidence["commands to run"] = _commands(prisma, failed, found, by_state)
    return Finding.failed("; ".join(problems), evidence, facts=_behind(db, problems[0]))


_STATE_WORDS = {"unrecorded": "ran, not recorded", "partial": "partly applied", "pending": "not applied"}


def _unmanaged(db: Database, migrations: list[PrismaMigration], where: str, prisma: str) -> Finding:
    """No migrations table: never migrated, or built another way (its tables there) and never baselined."""
    found = _existing(db, migrations)
    states = {m.name: _state(m, found)[0] for m in migrations}
    evidence = {"expected": "\n".join(states) or "(none)"}
    ran = [name for name, state in states.items() if state != "pending"]
    if not ran:
        return Finding.failed(
            f"no _prisma_migrations table{where}: the database was never migrated: run {prisma} migrate deploy",
            evidence, facts=_behind(db, "never migrated"),
        )
    evidence["in the database"] = table(["migration", "state"], [[n, _STATE_WORDS[s]] for n, s in states.items()])
    evidence["commands to run"] = "\n".join(
        [f"{prisma} migrate resolve --applied {n}" for n in ran if states[n] == "unrecorded"]
        + [f"{prisma} migrate deploy"]
    )
    return Finding.failed(
        f"no _prisma_migrations table{where}, but the tables of {ran[0]} exist: Prisma Migrate does not manage "
        f"this database yet: baseline it with {prisma} migrate resolve --applied {ran[0]}",
        evidence, facts=_behind(db, "not baselined"),
    )


def _behind(db: Database, detail: str) -> tuple[Fact, ...]:
    """The schema is not what the migrations expect: what an error naming a table or column follows from."""
    return (Fact(facts.MIGRATIONS_BEHIND, db.schema or db.address.dbname, detail),)


def _commands(prisma: str, failed: list[PrismaMigration], found: dict[Created, bool | None],
              by_state: dict[str, list[str]]) -> str:
    """What to run, in the order Prisma needs it: failed ones resolved, recorded ones marked, then deploy."""
    lines = [f"{prisma} migrate status"]
    for migration in failed:
        state, _ = _state(migration, found)
        if state == "unrecorded":
            lines.append(f"# {migration.name} failed but its changes are all there: if it completed, record it")
            lines.append(f"{prisma} migrate resolve --applied {migration.name}")
        else:
            what = "fix what its log says" if state == "pending" else "undo or finish its partial changes by hand"
            lines.append(f"# {migration.name} failed: {what}, then mark it rolled back and deploy again")
            lines.append(f"{prisma} migrate resolve --rolled-back {migration.name}")
    for name in by_state["partial"]:
        lines.append(f"# {name} ran in part: finish or undo it by hand, then record it or deploy it")
    for name in by_state["unrecorded"]:
        lines.append(f"# {name} already ran (its tables exist): record it, do not run it again")
        lines.append(f"{prisma} migrate resolve --applied {name}")
    lines.append(f"{prisma} migrate deploy")
    return "\n".join(lines)


def _state(migration: PrismaMigration, found: dict[Created, bool | None]) -> tuple[str, str]:
    """unrecorded (everything it creates exists), partial, or pending; and what the database has of it."""
    if not migration.creates:
        return "pending", "its SQL creates nothing this check can look for"
    if any(found.get(c) is None and c in found for c in migration.creates):
        return "pending", "what it creates could not be looked up (no USAGE on its schema?)"
    present = [str(c) for c in migration.creates if found.get(c)]
    missing = [str(c) for c in migration.creates if not found.get(c)]
    if not missing:
        return "unrecorded", "all it creates exists: " + _few(present)
    if not present:
        return "pending", "none of it: " + _few(missing)
    return "partial", f"exist: {_few(present)}; missing: {_few(missing)}"


def _few(names: list[str]) -> str:
    return ", ".join(names[:4]) + (f" (+{len(names) - 4} more)" if len(names) > 4 else "")


def _existing(db: Database, migrations: Iterable[PrismaMigration]) -> dict[Created, bool | None]:
    """Which of the objects these migrations create exist (one query; in the URL's schema when unqualified)."""
    objects = list(dict.fromkeys(c for m in migrations for c in m.creates))
    if not objects:
        return {}
    import psycopg

    kinds = [c.kind for c in objects]
    qualified = [_quoted(c.schema or db.schema, c.name) for c in objects]
    columns = [c.column or "" for c in objects]
    try:
        rows = db.rows(
            "SELECT CASE k WHEN 'type' THEN to_regtype(n) IS NOT NULL"
            " WHEN 'column' THEN EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(n)"
            " AND attname = c AND attnum > 0 AND NOT attisdropped)"
            " ELSE to_regclass(n) IS NOT NULL END FROM unnest(%s::text[], %s::text[], %s::text[]) WITH ORDINALITY"
            " AS t(k, n, c, i) ORDER BY i",
            (kinds, qualified, columns),
        )
    except psycopg.Error:  # no USAGE on a schema the SQL names: what exists stays unknown, never guessed
        return {c: None for c in objects}
    return {c: bool(row[0]) for c, row in zip(objects, rows, strict=True)}


def _quoted(schema: str | None, name: str) -> str:
    parts = [schema, name] if schema else [name]
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)
