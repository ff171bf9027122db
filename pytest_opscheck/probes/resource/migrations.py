"""The expected schema version, read from the migration files (never importing the user's application):
Alembic's revisions parsed with `ast` (Prisma's migration folders: `prisma.py`)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


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


def in_order(revisions: dict[str, Revision], wanted: set[str]) -> list[str]:
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
