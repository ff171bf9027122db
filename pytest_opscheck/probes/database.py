"""PostgreSQL probes: a read-only session, and the diagnoses of the runbooks' database sections."""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import unquote, urlsplit

from ..config import Settings
from ..targets import opener
from .result import Finding, TargetUnreachable, table

if TYPE_CHECKING:
    from psycopg.sql import Composable

T = TypeVar("T")
QUERY_TEXT_LIMIT = 200
TOP_STATEMENTS = 10
_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'?")
ENABLE_STATEMENTS = (
    "add shared_preload_libraries = 'pg_stat_statements' to postgresql.conf (in Compose: "
    "command: postgres -c shared_preload_libraries=pg_stat_statements), restart the server "
    "(docker compose restart db), then run CREATE EXTENSION pg_stat_statements; in database {dbname}"
)


@dataclass(frozen=True)
class Address:
    """Where the database is, without the password."""

    host: str
    port: int | str
    user: str
    dbname: str

    @classmethod
    def from_url(cls, url: str) -> Address:
        parts = urlsplit(url)
        port: int | str
        try:
            port = parts.port or 5432
        except ValueError:  # several hosts, or a port out of range: shown as written
            port = parts.netloc.rsplit("@", 1)[-1].split(":", 1)[-1]
        user = unquote(parts.username or "")
        return cls(parts.hostname or "localhost", port, user, unquote(parts.path.lstrip("/")) or user)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.where}/{self.dbname}"


# (SQLSTATEs, pattern of the message, cause): the first that matches wins. libpq gives no SQLSTATE for a
# failed connection, so the server's message decides there; once connected, the SQLSTATE decides.
_CAUSES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("28P01",), r"password authentication failed|no password supplied|authentication failed",
     "authentication failed for user {user} on {where}"),
    (("28000",), r'no pg_hba\.conf entry|pg_hba\.conf rejects|role "[^"]*" does not exist',
     "authentication failed for user {user} on {where}: no pg_hba.conf rule or no such role"),
    (("3D000",), r'database "[^"]*" does not exist', "database {dbname} does not exist on {where}"),
    ((), r"is not currently accepting connections",
     "database {dbname} on {where} does not accept connections (ALLOW_CONNECTIONS false)"),
    ((), r"too many connections for database",
     "too many connections for database {dbname} on {where} (its CONNECTION LIMIT is reached)"),
    ((), r"too many connections for role",
     "too many connections for user {user} on {where} (the role's CONNECTION LIMIT is reached)"),
    (("53300",), r"too many clients|remaining connection slots|too many connections",
     "too many connections on {where}: max_connections reached"),
    ((), r"shutting down", "server on {where} is shutting down"),
    (("57P03",), r"starting up|not yet accepting connections|in recovery mode",
     "server on {where} is starting up"),
    (("57P01",), r"terminating connection due to administrator command",
     "server on {where} ended the session (shutdown or pg_terminate_backend)"),
    (("57014",), r"statement timeout", "no answer within {timeout} s from {where} (statement_timeout)"),
    ((), r"connection refused", "connection refused by {where}"),
    ((), r"timeout expired|timed out", "timed out after {timeout} s connecting to {where}"),
    ((), r"resolve host|could not translate host name|name or service not known|name resolution|'idna' codec",
     "DNS lookup failed for {host}"),
    ((), r"\bssl\b", "TLS with {where} failed: {detail}"),
)


def classify(message: str, sqlstate: str | None, address: Address, timeout: float) -> str:
    """One line naming why a connection failed, built from the address (never from the URL)."""
    detail = _detail(message)
    for codes, pattern, cause in _CAUSES:
        if (sqlstate and sqlstate in codes) or re.search(pattern, message, re.IGNORECASE):
            return cause.format(
                user=address.user or "(default)", where=address.where, host=address.host,
                dbname=address.dbname, timeout=f"{timeout:g}", detail=detail,
            )
    return f"cannot connect to {address.where}: {detail}"


def _detail(message: str) -> str:
    """The server's or libpq's own words: the first line, after libpq's "connection ... failed:" prefix."""
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    first = first.rsplit(" failed: ", 1)[-1]
    return re.sub(r"^(FATAL|ERROR):\s+", "", first).strip()


class Database:
    """A read-only session on the configured database (autocommit, statement timeout)."""

    def __init__(self, connection: Any, address: Address, elapsed: float) -> None:
        self.connection = connection
        self.address = address
        self.connect_seconds = elapsed

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


def connect(url: str, timeout: float) -> Database:
    """Open a read-only session and run `SELECT 1`, all within `timeout` (DNS, TCP, TLS, auth, query).

    psycopg's connect_timeout is per address tried and at least 2 s; the deadline here bounds the total.
    """
    import psycopg

    address = Address.from_url(url)
    password = unquote(urlsplit(url).password or "")

    def open_and_ask() -> Any:
        connection = psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=max(1, math.ceil(timeout)),
            options=f"-c default_transaction_read_only=on -c statement_timeout={max(1, round(timeout * 1000))}",
            application_name="opscheck",
        )
        try:
            connection.execute("SELECT 1").fetchone()
        except psycopg.Error as exc:
            connection.close()
            raise _FirstQueryFailed(exc) from None
        return connection

    started = time.monotonic()
    try:
        connection = _within(timeout, open_and_ask, lambda late: late.close())
    except TimeoutError:
        raise TargetUnreachable("db", f"timed out after {timeout:g} s connecting to {address.where}") from None
    except _FirstQueryFailed as failed:
        cause = classify(str(failed.error), failed.error.sqlstate, address, timeout)
        cause = f"connected to {address} but SELECT 1 failed: {cause}"
        raise TargetUnreachable("db", _scrub(cause, password)) from None
    except Exception as exc:  # noqa: BLE001 - psycopg's errors, and what a malformed host makes socket raise
        cause = classify(str(exc), getattr(exc, "sqlstate", None), address, timeout)
        raise TargetUnreachable("db", _scrub(cause, password)) from None
    return Database(connection, address, time.monotonic() - started)


class _FirstQueryFailed(Exception):
    """Connected, but the first query failed; carries psycopg's error."""

    def __init__(self, error: Any) -> None:
        super().__init__(str(error))
        self.error = error


def _within(seconds: float, call: Callable[[], T], discard: Callable[[T], None]) -> T:
    """`call()`'s result, or TimeoutError after `seconds`; a result that comes later is `discard`ed."""
    lock = threading.Lock()
    done = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            value = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread as is
            with lock:
                box["error"] = exc
        else:
            with lock:
                abandoned = "abandoned" in box
                box["value"] = value
            if abandoned:
                with contextlib.suppress(Exception):  # nobody waits for it any more
                    discard(value)
        finally:
            done.set()

    threading.Thread(target=run, name="opscheck-db-connect", daemon=True).start()
    done.wait(seconds)
    with lock:
        if "value" not in box and "error" not in box:
            box["abandoned"] = True
            raise TimeoutError
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _scrub(text: str, password: str) -> str:
    return text.replace(password, "***") if password else text


@opener("db", requires="database_url", imports=("psycopg",))
def open_db(settings: Settings) -> Database:
    """Connect read-only and run `SELECT 1`: the shared reachability result of every database check."""
    assert settings.database_url is not None
    return connect(settings.database_url, settings.timeout)


def reachable(db: Database) -> Finding:
    """The session is open, read-only, and answers."""
    version, read_only, statement_timeout = db.rows(
        "SELECT current_setting('server_version'), current_setting('transaction_read_only'),"
        " current_setting('statement_timeout')"
    )[0]
    return Finding.passed(
        {
            "connection": f"{db.address} as {db.address.user or '(default)'}: PostgreSQL {version}, "
            f"connected and answered SELECT 1 in {db.connect_seconds * 1000:.0f} ms",
            "session": f"transaction_read_only = {read_only}, statement_timeout = {statement_timeout}",
        }
    )


def connections_headroom(db: Database, percent_limit: float) -> Finding:
    """Connections in use (pg_stat_activity) against max_connections."""
    used, limit, reserved = db.rows(
        "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),"
        " current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int"
    )[0]
    by_state = db.rows(
        "SELECT coalesce(datname, '-'), coalesce(usename, '-'), coalesce(state, '-'), count(*)"
        " FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 20"
    )
    percent = 100.0 * used / limit
    evidence = {
        "connections": f"{used} of max_connections {limit} in use ({percent:.0f}%, limit {percent_limit:g}%); "
        f"{reserved} of them reserved for superusers",
        "by database, user and state": table(
            ["database", "user", "state", "count"], [[str(d), str(u), str(s), str(c)] for d, u, s, c in by_state]
        ),
    }
    if percent >= percent_limit:
        return Finding.failed(
            f"{used} of {limit} connections in use ({percent:.0f}% ≥ {percent_limit:g}%)", evidence
        )
    return Finding.passed(evidence)


class _Session(NamedTuple):
    state: str
    user: str
    seconds: float
    blockers: list[int]
    query: str

    def line(self) -> str:
        return f"{self.state} {self.seconds:.0f} s: {self.query}"


def long_transactions(db: Database, seconds_limit: float) -> Finding:
    """No transaction or query of this database older than the limit, and no session waiting on a lock."""
    rows = db.rows(
        """
        SELECT pid, coalesce(state, '-'), coalesce(usename, '-'),
               greatest(extract(epoch FROM now() - xact_start),
                        CASE WHEN state = 'active' THEN extract(epoch FROM now() - query_start) END)::float,
               pg_blocking_pids(pid), left(query, %s)
        FROM pg_stat_activity
        WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' AND datname = current_database()
          AND (xact_start IS NOT NULL OR state = 'active')
        ORDER BY 4 DESC NULLS LAST
        """,
        (QUERY_TEXT_LIMIT * 5,),
    )
    sessions = {
        pid: _Session(state, user, age or 0.0, list(blockers), query_text(query))
        for pid, state, user, age, blockers, query in rows
    }
    long_running = [pid for pid, s in sessions.items() if s.seconds >= seconds_limit]
    blocked = [pid for pid, s in sessions.items() if s.blockers]
    if not long_running and not blocked:
        return Finding.passed(
            {"sessions": f"{len(sessions)} open transaction(s) in {db.address.dbname}, none over "
                         f"{seconds_limit:g} s, none waiting on a lock"}
        )
    holders = list(dict.fromkeys(pid for b in blocked for pid in sessions[b].blockers))
    shown = dict.fromkeys(long_running + blocked + [pid for pid in holders if pid in sessions])
    evidence = {
        "sessions": table(
            ["pid", "duration", "state", "user", "blocked by", "query"],
            [
                [str(pid), f"{s.seconds:.1f} s", s.state, s.user, ",".join(map(str, s.blockers)) or "-", s.query]
                for pid, s in ((pid, sessions[pid]) for pid in shown)
            ],
        )
    }
    if blocked:
        evidence["locks"] = "\n".join(
            f"pid {pid} ({sessions[pid].line()}) waits on pid {holder}"
            + (f" ({sessions[holder].line()})" if holder in sessions else "")
            for pid in blocked
            for holder in sessions[pid].blockers
        )
    parts = []
    if long_running:
        oldest = sessions[long_running[0]]
        parts.append(
            f"{len(long_running)} transaction(s) open over {seconds_limit:g} s "
            f"(oldest: pid {long_running[0]}, {oldest.seconds:.0f} s, {oldest.state})"
        )
    if blocked:
        parts.append(f"{len(blocked)} session(s) waiting on a lock held by pid {', '.join(map(str, holders))}")
    return Finding.failed("; ".join(parts), evidence)


def statements_unavailable(db: Database) -> str | None:
    """Why pg_stat_statements cannot be read in this database (not installed, not preloaded), else None."""
    from psycopg import errors, sql

    view = _statements_view(db)
    enable = ENABLE_STATEMENTS.format(dbname=db.address.dbname)
    if view is None:
        return f"pg_stat_statements is not installed in database {db.address.dbname}: {enable}"
    try:
        db.rows(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(view))
    except errors.ObjectNotInPrerequisiteState:
        return f"pg_stat_statements is installed but not loaded: {enable}"
    return None


def slow_queries(db: Database, mean_ms_limit: float) -> Finding:
    """Statements of this database whose mean execution time exceeds the limit (pg_stat_statements)."""
    from psycopg import sql

    view = _statements_view(db)
    assert view is not None, "call statements_unavailable() first"
    mean = "mean_exec_time" if int(db.rows("SHOW server_version_num")[0][0]) >= 130000 else "mean_time"
    rows = db.rows(
        sql.SQL(
            "SELECT calls, {mean}, left(query, %s) FROM {view}"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " ORDER BY {mean} DESC LIMIT %s"
        ).format(mean=sql.Identifier(mean), view=view),
        (QUERY_TEXT_LIMIT * 5, TOP_STATEMENTS),
    )
    evidence = {
        f"top {TOP_STATEMENTS} statements by mean time": table(
            ["calls", "mean ms", "query"], [[str(c), f"{m:.1f}", query_text(q)] for c, m, q in rows]
        )
    }
    slow = [(m, q) for _, m, q in rows if m > mean_ms_limit]
    if slow:
        worst_ms, worst = slow[0]
        return Finding.failed(
            f"{len(slow)} statement(s) average over {mean_ms_limit:g} ms (worst: {worst_ms:.0f} ms, "
            f"{query_text(worst, 60)})",
            evidence,
        )
    return Finding.passed(evidence)


def _statements_view(db: Database) -> Composable | None:
    from psycopg import sql

    found = db.rows(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_stat_statements'"
    )
    return sql.Identifier(found[0][0], "pg_stat_statements") if found else None


def query_text(query: Any, limit: int = QUERY_TEXT_LIMIT) -> str:
    """A query on one line, its string literals masked (they may hold secrets), cut at `limit` characters."""
    text = " ".join(_STRING_LITERAL.sub("'…'", str(query or "")).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
