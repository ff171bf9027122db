"""A Prisma migrations folder as Prisma Migrate reads it (every subfolder with a migration.sql, by name), and
what each migration creates, read off its SQL: the tables, views, indexes, enum types and columns that exist
once it ran. Nothing is run; the SQL is only read."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from .migrations import MigrationsError


@dataclass(frozen=True)
class Created:
    """One object a migration creates: a relation (table, view, index), a type, or a column of a table."""

    kind: str  # "relation", "type" or "column"
    schema: str | None
    name: str
    column: str | None = None

    def __str__(self) -> str:
        where = f"{self.schema}." if self.schema else ""
        return f"{where}{self.name}.{self.column}" if self.column else f"{where}{self.name}"


@dataclass(frozen=True)
class PrismaMigration:
    """One migration folder: its name, its SQL, and what the SQL creates."""

    name: str
    sql: str
    creates: tuple[Created, ...]

    def matches(self, checksum: str) -> bool:
        """Prisma's checksum of the script (sha256, line endings as written or normalized) is `checksum`."""
        data = self.sql.encode()
        sums = {hashlib.sha256(data).hexdigest(), hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()}
        return checksum.lower() in sums


def prisma_folder(migrations_dir: Path) -> list[PrismaMigration]:
    """The migrations of a Prisma migrations folder, oldest first (by name, as Prisma orders them)."""
    if not migrations_dir.is_dir():
        raise MigrationsError(f"{migrations_dir}: no Prisma migrations folder (check migrations.migrations_dir)")
    found = []
    for folder in sorted(p for p in migrations_dir.iterdir() if p.is_dir() and (p / "migration.sql").is_file()):
        try:
            sql = (folder / "migration.sql").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise MigrationsError(f"{folder / 'migration.sql'}: cannot read: {exc}") from None
        found.append(PrismaMigration(folder.name, sql, tuple(created_by(sql))))
    return found


_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_QUALIFIED = rf"({_IDENT})(?:\s*\.\s*({_IDENT}))?"
_IF_NOT_EXISTS = r"(?:IF\s+NOT\s+EXISTS\s+)?"
_STATEMENTS = (
    ("relation", re.compile(rf"CREATE\s+(?:UNLOGGED\s+)?TABLE\s+{_IF_NOT_EXISTS}{_QUALIFIED}", re.I)),
    ("relation", re.compile(rf"CREATE\s+(?:OR\s+REPLACE\s+)?(?:MATERIALIZED\s+)?VIEW\s+{_IF_NOT_EXISTS}{_QUALIFIED}",
                            re.I)),
    ("type", re.compile(rf"CREATE\s+TYPE\s+{_QUALIFIED}", re.I)),
)
_INDEX = re.compile(
    rf"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?{_IF_NOT_EXISTS}({_IDENT})\s+ON\s+(?:ONLY\s+)?{_QUALIFIED}",
    re.I,
)
_ALTER = re.compile(rf"ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_QUALIFIED}\s+(.*)", re.I | re.S)
_ADD_COLUMN = re.compile(rf"\bADD\s+COLUMN\s+{_IF_NOT_EXISTS}({_IDENT})", re.I)
_RENAME_COLUMN = re.compile(rf"\bRENAME\s+COLUMN\s+{_IDENT}\s+TO\s+({_IDENT})", re.I)


def created_by(sql: str) -> list[Created]:
    """What `sql` creates, in order (Prisma's generated SQL, or a hand-written one in the same style)."""
    found: list[Created] = []
    for statement in _statements(sql):
        for kind, pattern in _STATEMENTS:
            match = pattern.match(statement)
            if match:
                found.append(Created(kind, *_split(match.group(1), match.group(2))))
        if match := _INDEX.match(statement):
            schema, _ = _split(match.group(2), match.group(3))
            found.append(Created("relation", schema, _name(match.group(1))))
        if match := _ALTER.match(statement):
            schema, table = _split(match.group(1), match.group(2))
            for column in [*_ADD_COLUMN.findall(match.group(3)), *_RENAME_COLUMN.findall(match.group(3))]:
                found.append(Created("column", schema, table, _name(column)))
    return list(dict.fromkeys(found))


def _statements(sql: str) -> list[str]:
    """The statements of `sql`, comments removed (a `;` inside a string literal is rare in migrations)."""
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)
    sql = re.sub(r"--[^\n]*", " ", sql)
    return [s.strip() for s in sql.split(";") if s.strip()]


def _split(first: str, second: str | None) -> tuple[str | None, str]:
    """(schema, name) of `first` or `first.second`."""
    return (_name(first), _name(second)) if second else (None, _name(first))


def _name(identifier: str) -> str:
    """An identifier as PostgreSQL stores it: quoted as written, unquoted folded to lower case."""
    if identifier.startswith('"'):
        return identifier[1:-1].replace('""', '"')
    return identifier.lower()
