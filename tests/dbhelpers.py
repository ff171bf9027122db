"""Test data for the database checks: a role with a planted password, databases, migration folders."""

from __future__ import annotations

import socket
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

PLANTED_DB_PASSWORD = "PLANTED-db-pw-7e3a"


def admin(url: str, dbname: str = "postgres"):  # type: ignore[no-untyped-def]
    """A superuser connection (the tests' own, never the checks')."""
    import psycopg

    return psycopg.connect(urlsplit(url)._replace(path=f"/{dbname}").geturl(), autocommit=True, connect_timeout=5)


def make_database(url: str, with_statements: bool = True) -> str:
    """A fresh database owned by the superuser, readable by role `app` (password planted); returns its name."""
    name = f"app_{uuid.uuid4().hex[:8]}"
    with admin(url) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'app'").fetchone()
        if not exists:
            conn.execute(f"CREATE ROLE app LOGIN PASSWORD '{PLANTED_DB_PASSWORD}'")
        conn.execute(f"CREATE DATABASE {name}")
    with admin(url, name) as conn:
        conn.execute("GRANT pg_read_all_stats TO app")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO app")
        conn.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO app")
        if with_statements:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return name


def app_url(url: str, dbname: str, password: str = "${OPSCHECK_TEST_DB_PASSWORD}") -> str:
    """The URL a user would configure for role `app` on `dbname`."""
    parts = urlsplit(url)
    return f"postgresql://app:{password}@127.0.0.1:{parts.port}/{dbname}"


@contextmanager
def blackhole() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def alembic_folder(root: Path) -> Path:
    """An Alembic script location with a branch and a merge: base -> (a, b) -> merge -> tip."""
    versions = root / "alembic" / "versions"
    versions.mkdir(parents=True)
    revisions = [
        ("0001_base", "base", None, "create users"),
        ("0002_a", "aaaa", "base", "add items"),
        ("0003_b", "bbbb", "base", "add orders"),
        ("0004_merge", "merge1", ("aaaa", "bbbb"), "merge items and orders"),
        ("0005_tip", "tip", "merge1", "add index on items"),
    ]
    for filename, revision, down, message in revisions:
        (versions / f"{filename}.py").write_text(
            textwrap.dedent(
                f'''\
                """{message}

                Revision ID: {revision}
                """
                from alembic import op  # never imported by the check

                revision: str = {revision!r}
                down_revision = {down!r}
                branch_labels = None


                def upgrade() -> None:
                    op.execute("SELECT 1")
                '''
            )
        )
    return root / "alembic"
