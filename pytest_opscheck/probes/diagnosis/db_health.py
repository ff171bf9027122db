"""The database's own health signals the runbooks act on by hand: tables read by sequential scans over many
rows ("Add missing indexes", Slow API Responses) and data pages that failed their checksum ("If data
corruption suspected", Database Down). Read-only statistics views; nothing is analysed or vacuumed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..resource.database import Database
from ..result import Finding, table

# A table must have been scanned sequentially this many times before its share of scans means anything (one
# pg_dump or one report reads every table once).
MIN_SEQ_SCANS = 10
TABLES_SHOWN = 10
ENABLE_CHECKSUMS = (
    "a new cluster: initdb --data-checksums (POSTGRES_INITDB_ARGS=--data-checksums for the postgres image); "
    "an existing one, with the server stopped: pg_checksums --enable -D <data directory> (PostgreSQL 12+)"
)


def missing_indexes(db: Database, rows_limit: int, percent_limit: float) -> Finding:
    """Tables of this database read mostly by sequential scans over many rows (pg_stat_user_tables)."""
    schema = "AND schemaname = %s" if db.schema else ""
    rows = db.rows(
        "SELECT schemaname, relname, seq_scan, seq_tup_read, idx_scan, n_live_tup"
        " FROM pg_stat_user_tables WHERE seq_scan >= %s " + schema + " ORDER BY seq_tup_read DESC",
        (MIN_SEQ_SCANS, db.schema) if db.schema else (MIN_SEQ_SCANS,),
    )
    since = db.rows("SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()")
    counted = db.rows(
        "SELECT count(*) FROM pg_stat_user_tables" + (" WHERE schemaname = %s" if db.schema else ""),
        (db.schema,) if db.schema else (),
    )[0][0]
    flagged = seq_scanned(rows, rows_limit, percent_limit)
    reset = since[0][0] if since and since[0][0] else None
    counters = f"counters since {reset:%Y-%m-%d %H:%M} (stats reset)" if reset else "counters since the cluster started"
    if not flagged:
        return Finding.passed(
            {"tables": f"{counted} table(s) in {db.address.dbname}; none read mostly (≥ {percent_limit:g}%) by "
                       f"sequential scans of ≥ {rows_limit} rows; {counters}"}
        )
    evidence = {
        "tables read by sequential scans": table(
            ["table", "live rows", "seq scans", "rows read by them", "rows per scan", "index scans", "seq share"],
            [
                [name, str(live), str(seq), str(read), str(read // seq), "no index" if idx is None else str(idx),
                 f"{share:.0f}%"]
                for name, seq, read, idx, live, share in flagged[:TABLES_SHOWN]
            ],
        ),
        "figures": f"pg_stat_user_tables of {db.address.dbname}, {counters}; a table is listed when at least "
                   f"{percent_limit:g}% of its scans (of {MIN_SEQ_SCANS} or more) are sequential and read "
                   f"{rows_limit} rows or more each",
        "find the query": "db.slow_queries lists the slowest statements; EXPLAIN (ANALYZE, BUFFERS) on one of them "
                          "shows a Seq Scan on the table; its WHERE / JOIN / ORDER BY columns want the index",
    }
    worst = flagged[0]
    more = f" (+{len(flagged) - 1} more)" if len(flagged) > 1 else ""
    return Finding.failed(
        f"{len(flagged)} table(s) read mostly by sequential scans: {worst[0]} ({worst[1]} scans of "
        f"{worst[2] // worst[1]} rows each, {worst[5]:.0f}% of its scans){more}",
        evidence,
    )


def seq_scanned(
    rows: Sequence[tuple[Any, ...]], rows_limit: int, percent_limit: float
) -> list[tuple[str, int, int, int | None, int, float]]:
    """From pg_stat_user_tables rows (schema, table, seq_scan, seq_tup_read, idx_scan, n_live_tup), the tables
    scanned sequentially at least `MIN_SEQ_SCANS` times over `rows_limit` rows a scan on average, for at least
    `percent_limit` percent of their scans: (schema.table, seq scans, rows read, index scans, live rows, share)."""
    found = []
    for schema, name, seq, read, idx, live in rows:
        seq, read = int(seq or 0), int(read or 0)
        if seq < MIN_SEQ_SCANS or read // seq < rows_limit:
            continue
        share = 100.0 * seq / (seq + int(idx or 0))
        if share >= percent_limit:
            found.append((f"{schema}.{name}", seq, read, None if idx is None else int(idx), int(live or 0), share))
    return sorted(found, key=lambda t: t[2], reverse=True)


def checksums_off(db: Database) -> str | None:
    """Why the server cannot report corrupt pages (data checksums off, or a server before 12), else None."""
    if int(db.rows("SHOW server_version_num")[0][0]) < 120000:
        return "PostgreSQL before 12 keeps no checksum failure counter (pg_stat_database.checksum_failures)"
    if str(db.rows("SHOW data_checksums")[0][0]) != "on":
        return (
            f"data checksums are off on the cluster of {db.address.dbname}: the server cannot tell a corrupt page. "
            f"Enable them: {ENABLE_CHECKSUMS}"
        )
    return None


def no_corruption(db: Database) -> Finding:
    """No data page of any database of the cluster failed its checksum (call `checksums_off` first)."""
    rows = db.rows(
        "SELECT datname, checksum_failures, checksum_last_failure FROM pg_stat_database ORDER BY datname NULLS FIRST"
    )
    return checksum_verdict(rows)


def checksum_verdict(rows: Sequence[tuple[str | None, int | None, datetime | None]]) -> Finding:
    """The verdict on pg_stat_database's (datname, checksum_failures, checksum_last_failure) rows of a cluster
    with data checksums on: every failure counted there is a page read from disk whose checksum did not match,
    i.e. corruption the server saw (the NULL datname row is the shared catalogs)."""
    failing = [(name or "(shared catalogs)", int(count), last) for name, count, last in rows if count]
    shown = table(
        ["database", "checksum failures", "last failure"],
        [[name or "(shared catalogs)", str(count or 0), f"{last:%Y-%m-%d %H:%M:%S}" if last else "-"]
         for name, count, last in rows],
    )
    if not failing:
        return Finding.passed({"data checksums": f"on; 0 checksum failures in {len(rows)} database(s)"})
    total = sum(count for _, count, _ in failing)
    latest = max((last for _, _, last in failing if last), default=None)
    where = ", ".join(f"{name} ({count})" for name, count, _ in failing)
    when = f", the last at {latest:%Y-%m-%d %H:%M:%S}" if latest else ""
    evidence = {
        "pg_stat_database": shown,
        "which relation": "the server log names each page: docker compose logs db | grep -i 'checksum'",
    }
    return Finding.failed(f"{total} data page checksum failure(s): {where}{when}", evidence)
