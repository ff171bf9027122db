"""The database as the probes see it: one read-only session on `database_url`, opened once per sweep."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...config import Settings
from ..transport.postgres import Address, connect

if TYPE_CHECKING:
    from psycopg.sql import Composable


class Database:
    """A read-only session on the configured database (autocommit, statement timeout).

    `schema` is Prisma's `schema=` of the URL (None when not given), also the session's search_path.
    """

    def __init__(self, connection: Any, address: Address, elapsed: float, schema: str | None = None) -> None:
        self.connection = connection
        self.address = address
        self.connect_seconds = elapsed
        self.schema = schema

    def rows(self, sql: str | Composable, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one read-only query and return its rows."""
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def execute(self, sql: str | Composable, params: tuple[Any, ...] = ()) -> Any:
        """Run one read-only statement; the cursor is returned for `fetchone()`/`fetchall()`."""
        return self.connection.execute(sql, params)

    def close(self) -> None:
        self.connection.close()


def open_url(url: str, timeout: float) -> Database:
    """Connect read-only to `url` and run `SELECT 1` within `timeout`; raises TargetUnreachable with the cause."""
    connected = connect(url, timeout)
    return Database(connected.connection, connected.address, connected.seconds, connected.schema)


def open_db(settings: Settings) -> Database:
    """Connect read-only and run `SELECT 1`: the shared reachability result of every database check."""
    assert settings.database_url is not None
    return open_url(settings.database_url, settings.timeout)
