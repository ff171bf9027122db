"""PostgreSQL probes: a read-only session, and the diagnoses of the runbooks' database sections."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..config import Settings
from ..targets import opener
from .result import Finding, TargetUnreachable, table

QUERY_TEXT_LIMIT = 200


@dataclass(frozen=True)
class Address:
    """Where the database is, without the password."""

    host: str
    port: int
    user: str
    dbname: str

    @classmethod
    def from_url(cls, url: str) -> Address:
        parts = urlsplit(url)
        return cls(parts.hostname or "localhost", parts.port or 5432, parts.username or "", parts.path.lstrip("/"))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}/{self.dbname}"


def classify(message: str, sqlstate: str | None, address: Address, timeout: float) -> str:
    """One line naming why a connection failed: refused, timed out, DNS, auth, missing db, full, starting."""
    text = message.lower()
    where = f"{address.host}:{address.port}"
    if sqlstate == "28P01" or "password authentication failed" in text:
        return f"authentication failed for user {address.user} on {where}"
    if sqlstate == "28000" or "no pg_hba.conf entry" in text or ("role" in text and "does not exist" in text):
        return f"authentication failed for user {address.user} on {where} (role or pg_hba.conf rule missing)"
    if sqlstate == "3D000" or ("database" in text and "does not exist" in text):
        return f"database {address.dbname} does not exist on {where}"
    if sqlstate == "53300" or "too many connections" in text or "remaining connection slots" in text:
        return f"too many connections on {where} (max_connections reached)"
    if sqlstate == "57P03" or "starting up" in text:
        return f"server on {where} is starting up"
    if "shutting down" in text or sqlstate in ("57P01", "57P02"):
        return f"server on {where} is shutting down"
    if "connection refused" in text:
        return f"connection refused by {where}"
    if "timeout" in text or "timed out" in text:
        return f"timed out after {timeout:g} s connecting to {where}"
    if "name or service not known" in text or "could not translate host name" in text or "resolve" in text:
        return f"DNS lookup failed for {address.host}"
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return f"cannot connect to {where}: {first}"


class Database:
    """A read-only session on the configured database (autocommit, statement timeout)."""

    def __init__(self, connection: Any, address: Address, elapsed: float) -> None:
        self.connection = connection
        self.address = address
        self.connect_seconds = elapsed

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one read-only query and return its rows."""
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """Run one read-only statement; the cursor is returned for `fetchone()`/`fetchall()`."""
        return self.connection.execute(sql, params)

    def close(self) -> None:
        self.connection.close()


def connect(url: str, timeout: float) -> Database:
    """Open a read-only session, bounded by `timeout` in all (DNS, TCP, TLS, startup, auth)."""
    import psycopg

    address = Address.from_url(url)
    try:
        socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise TargetUnreachable("db", f"DNS lookup failed for {address.host}") from None
    statement_ms = int(timeout * 1000)
    started = time.monotonic()
    try:
        connection = psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=max(1, round(timeout)),
            options=f"-c default_transaction_read_only=on -c statement_timeout={statement_ms}",
            application_name="opscheck",
        )
    except psycopg.OperationalError as exc:
        sqlstate = getattr(exc, "sqlstate", None)
        raise TargetUnreachable("db", classify(str(exc), sqlstate, address, timeout)) from None
    except psycopg.Error as exc:
        raise TargetUnreachable("db", classify(str(exc), getattr(exc, "sqlstate", None), address, timeout)) from None
    return Database(connection, address, time.monotonic() - started)


@opener("db", requires="database_url")
def open_db(settings: Settings) -> Database:
    """Connect and run `SELECT 1`: the shared reachability result of every database check."""
    assert settings.database_url is not None
    db = connect(settings.database_url, settings.timeout)
    try:
        db.rows("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure of the first query means "not usable"
        db.close()
        raise TargetUnreachable("db", f"connected to {db.address} but SELECT 1 failed: {exc}") from None
    return db


def reachable(db: Database) -> Finding:
    """The session is open and answers."""
    version = db.rows("SHOW server_version")[0][0]
    return Finding.passed(
        {"connection": f"{db.address} as {db.address.user}, PostgreSQL {version}, {db.connect_seconds * 1000:.0f} ms"}
    )


def connections_headroom(db: Database, percent_limit: float) -> Finding:
    """Connections in use against max_connections."""
    used, limit = db.rows(
        "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),"
        " current_setting('max_connections')::int"
    )[0]
    by_state = db.rows(
        "SELECT coalesce(state, '?'), count(*) FROM pg_stat_activity"
        " WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 2 DESC"
    )
    percent = 100.0 * used / limit
    evidence = {
        "connections": f"{used} of max_connections {limit} ({percent:.0f}%, limit {percent_limit:g}%)",
        "by state": table(["state", "count"], [[str(s), str(c)] for s, c in by_state]),
    }
    if percent >= percent_limit:
        return Finding.failed(f"{used} of {limit} connections in use ({percent:.0f}% ≥ {percent_limit:g}%)", evidence)
    return Finding.passed(evidence)


def long_transactions(db: Database, seconds_limit: float) -> Finding:
    """No transaction or query older than the limit, and no session waiting on a lock."""
    rows = db.rows(
        """
        SELECT pid, state, extract(epoch FROM now() - coalesce(xact_start, query_start))::float AS age,
               pg_blocking_pids(pid) AS blockers, coalesce(wait_event_type, ''), left(query, %s)
        FROM pg_stat_activity
        WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'
          AND (xact_start IS NOT NULL OR state = 'active')
        ORDER BY age DESC NULLS LAST
        """,
        (QUERY_TEXT_LIMIT,),
    )
    long_running = [r for r in rows if r[2] is not None and r[2] >= seconds_limit]
    blocked = [r for r in rows if r[3]]
    if not long_running and not blocked:
        return Finding.passed({"sessions": f"{len(rows)} open transactions, none over {seconds_limit:g} s"})
    listing = table(
        ["pid", "duration", "state", "blocked by", "wait", "query"],
        [
            [str(pid), f"{age:.1f} s", str(state), ",".join(map(str, blockers)) or "-", wait or "-", _one_line(q)]
            for pid, state, age, blockers, wait, q in long_running + [b for b in blocked if b not in long_running]
        ],
    )
    pairs = "\n".join(f"pid {r[0]} waits on pid {', '.join(map(str, r[3]))}" for r in blocked)
    evidence = {"sessions": listing}
    if pairs:
        evidence["locks"] = pairs
    parts = []
    if long_running:
        oldest = long_running[0]
        parts.append(f"{len(long_running)} transaction(s) over {seconds_limit:g} s (oldest pid {oldest[0]}, "
                     f"{oldest[2]:.0f} s)")
    if blocked:
        parts.append(f"{len(blocked)} session(s) waiting on a lock")
    return Finding.failed("; ".join(parts), evidence)


def statements_extension(db: Database) -> bool:
    """Whether pg_stat_statements is installed in this database (and loaded)."""
    return bool(db.rows("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'")[0][0])


def slow_queries(db: Database, mean_ms_limit: float) -> Finding:
    """Statements whose mean execution time exceeds the limit, from pg_stat_statements."""
    rows = db.rows(
        "SELECT calls, mean_exec_time, left(query, %s) FROM pg_stat_statements"
        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " ORDER BY mean_exec_time DESC LIMIT 10",
        (QUERY_TEXT_LIMIT,),
    )
    top = table(["calls", "mean ms", "query"], [[str(c), f"{m:.1f}", _one_line(q)] for c, m, q in rows])
    slow = [r for r in rows if r[1] > mean_ms_limit]
    if slow:
        return Finding.failed(
            f"{len(slow)} statement(s) with a mean time over {mean_ms_limit:g} ms (worst {slow[0][1]:.0f} ms)",
            {"top statements by mean time": top},
        )
    return Finding.passed({"top statements by mean time": top})


def _one_line(text: Any) -> str:
    return " ".join(str(text or "").split())
