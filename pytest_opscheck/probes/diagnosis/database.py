"""The database sections of the runbooks: reachable, connections headroom, long transactions and lock waits,
slow statements (pg_stat_statements)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from ...model import Fact
from .. import facts
from ..resource.database import Database
from ..result import Finding, table
from ..secrets import mask_sql

if TYPE_CHECKING:
    from psycopg.sql import Composable

QUERY_TEXT_LIMIT = 200
TOP_STATEMENTS = 10
ENABLE_STATEMENTS = (
    "add shared_preload_libraries = 'pg_stat_statements' to postgresql.conf (in Compose: "
    "command: postgres -c shared_preload_libraries=pg_stat_statements), restart the server "
    "(docker compose restart db), then run CREATE EXTENSION pg_stat_statements; in database {dbname}"
)


def reachable(db: Database) -> Finding:
    """The session is open, read-only, and answers."""
    version, read_only, statement_timeout, search_path = db.rows(
        "SELECT current_setting('server_version'), current_setting('transaction_read_only'),"
        " current_setting('statement_timeout'), current_setting('search_path')"
    )[0]
    session = f"transaction_read_only = {read_only}, statement_timeout = {statement_timeout}"
    return Finding.passed(
        {
            "connection": f"{db.address} as {db.address.user or '(default)'}: PostgreSQL {version}, "
            f"connected and answered SELECT 1 in {db.connect_seconds * 1000:.0f} ms",
            "session": session + (f", search_path = {search_path} (schema={db.schema})" if db.schema else ""),
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
    holders = db.rows(
        "SELECT coalesce(usename, '-'), coalesce(nullif(application_name, ''), '-'),"
        " coalesce(host(client_addr), 'local socket'), count(*)"
        " FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2 LIMIT 20"
    )
    percent = 100.0 * used / limit
    evidence = {
        "connections": f"{used} of max_connections {limit} in use ({percent:.0f}%, limit {percent_limit:g}%); "
        f"{reserved} of them reserved for superusers",
        "by database, user and state": table(
            ["database", "user", "state", "count"], [[str(d), str(u), str(s), str(c)] for d, u, s, c in by_state]
        ),
    }
    evidence["by holder (user, application_name, client address)"] = table(
        ["user", "application", "client", "count"], [[str(u), str(a), str(c), str(n)] for u, a, c, n in holders]
    )
    if percent >= percent_limit:
        top = f"; most held by {holder_line(holders[0], used)}" if holders else ""
        return Finding.failed(
            f"{used} of {limit} connections in use ({percent:.0f}% ≥ {percent_limit:g}%){top}", evidence,
            facts=(Fact(facts.CONNECTIONS_FULL, db.address.dbname, f"{used} of {limit} connections in use"),),
        )
    return Finding.passed(evidence)


def holder_line(row: tuple[Any, ...], used: int) -> str:
    """`user app (application worker, from 172.18.0.5): 49 of 50`: who holds the most connections."""
    user, app, client, count = row
    named = f"application {app}, " if app != "-" else ""
    return f"user {user} ({named}from {client}): {count} of {used}"


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
        # Who holds it, with what it is doing: the session to look at (and, if safe, end).
        named = ", ".join(f"{pid}" + (f" ({sessions[pid].line()})" if pid in sessions else "") for pid in holders[:3])
        parts.append(f"{len(blocked)} session(s) waiting on a lock held by pid {named}")
    # A lock held with sessions waiting on it is a fault of its own: what times out behind it follows from it.
    held = tuple(
        Fact(facts.LOCK_HELD, str(holder), f"{sum(holder in sessions[b].blockers for b in blocked)} session(s) "
             f"waiting on pid {holder}" + (f" ({sessions[holder].line()})" if holder in sessions else ""))
        for holder in holders
    )
    return Finding.failed("; ".join(parts), evidence, facts=held)


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
    since = _stats_since(db)
    if since:
        evidence["statistics since"] = since + " (pg_stat_statements_info.stats_reset: what ran before is not counted)"
    slow = [(m, q) for _, m, q in rows if m > mean_ms_limit]
    if slow:
        worst_ms, worst = slow[0]
        return Finding.failed(
            f"{len(slow)} statement(s) average over {mean_ms_limit:g} ms (worst: {worst_ms:.0f} ms, "
            f"{query_text(worst, 60)})" + (f"; statistics since {since}" if since else ""),
            evidence,
        )
    return Finding.passed(evidence)


def _stats_since(db: Database) -> str | None:
    """When pg_stat_statements' statistics were last reset (PostgreSQL 14+), and how long ago; None before 14."""
    from psycopg import sql

    found = db.rows(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_stat_statements'"
    )
    info = sql.Identifier(found[0][0], "pg_stat_statements_info") if found else None
    if info is None or not db.rows("SELECT to_regclass(%s) IS NOT NULL", (info.as_string(db.connection),))[0][0]:
        return None
    reset, seconds = db.rows(
        sql.SQL("SELECT to_char(stats_reset AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"
                " extract(epoch FROM now() - stats_reset)::float FROM {}").format(info)
    )[0]
    if reset is None:
        return None
    ago = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else \
        f"{seconds / 3600:.0f} h"
    return f"{reset} UTC, {ago} ago"


def _statements_view(db: Database) -> Composable | None:
    from psycopg import sql

    found = db.rows(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_stat_statements'"
    )
    return sql.Identifier(found[0][0], "pg_stat_statements") if found else None


def query_text(query: Any, limit: int = QUERY_TEXT_LIMIT) -> str:
    """A query on one line, its string literals masked (they may hold secrets), cut at `limit` characters."""
    # Comments (nested ones read to their real end: `/* /* */ secret */`), strings and dollar-quoted bodies.
    masked = mask_sql(str(query or ""))
    text = " ".join(masked.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
