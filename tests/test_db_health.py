"""db.missing_indexes and db.no_corruption on real PostgreSQL clusters: a table read by sequential scans, a
cluster with data checksums on (and the default one, without); the failure path of the checksum counter by
its meaning, on the pure verdict."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from conftest import unavailable
from dbhelpers import PLANTED_DB_PASSWORD, admin, app_url, make_database
from realservices import Postgres, ServiceUnavailable, start_postgres

from pytest_opscheck.probes.diagnosis.db_health import MIN_SEQ_SCANS, checksum_verdict, seq_scanned

SWEEP = ("--opscheck", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "--opscheck-json", "out.json")


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCHECK_TEST_DB_PASSWORD", PLANTED_DB_PASSWORD)


@pytest.fixture(scope="module")
def checksummed() -> Iterator[Postgres]:
    """A second throwaway cluster, made with `initdb --data-checksums`."""
    if os.environ.get("OPSCHECK_TEST_DATABASE_URL"):
        unavailable("OPSCHECK_TEST_DATABASE_URL is set: these tests need to make their own cluster with checksums")
    try:
        server = start_postgres(("--data-checksums",))
    except (ServiceUnavailable, OSError) as exc:
        unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()


def sweep(pytester: pytest.Pytester, url: str, check: str, extra: str = "") -> dict[str, Any]:
    """One check against `url` as role `app`; its record; the planted password in no output."""
    pytester.makefile(".toml", opscheck=f'database_url = "{url}"\n{extra}')
    result = pytester.runpytest(*SWEEP, "-k", check)
    text = (pytester.path / "out.json").read_text()
    outputs = result.stdout.str() + result.stderr.str() + text + (pytester.path / "opscheck-report.html").read_text()
    assert PLANTED_DB_PASSWORD not in outputs
    return {c["id"]: c for c in json.loads(text)["checks"]}[check]


def test_a_table_read_by_sequential_scans_is_named_with_its_figures(pytester: pytest.Pytester,
                                                                    postgres: Postgres) -> None:
    name = make_database(postgres.url, with_statements=False)
    assert sweep(pytester, app_url(postgres.url, name), "db.missing_indexes")["outcome"] == "passed"
    with admin(postgres.url, name) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, customer int)")  # customer: no index
        conn.execute("INSERT INTO orders SELECT g, g % 500 FROM generate_series(1, 20000) g")
        conn.execute("CREATE TABLE users (id int PRIMARY KEY, name text)")  # read by its primary key
        conn.execute("INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 20000) g")
        conn.execute("ANALYZE orders")
        conn.execute("ANALYZE users")
        for customer in range(MIN_SEQ_SCANS + 2):
            conn.execute("SELECT count(*) FROM orders WHERE customer = %s", (customer,))
        for user in range(50):
            conn.execute("SELECT name FROM users WHERE id = %s", (user,))
        for _ in range(MIN_SEQ_SCANS + 2):  # a few full reads too, but most of its reads use the index
            conn.execute("SELECT count(*) FROM users")
    # The statistics are flushed when that session ends.
    record = sweep(pytester, app_url(postgres.url, name), "db.missing_indexes")
    assert record["outcome"] == "failed"
    assert re.fullmatch(
        r"1 table\(s\) read mostly by sequential scans: public\.orders \(1[23] scans of \d{5} rows each, 100% of its "
        r"scans\)", record["message"]), record["message"]
    tables = record["evidence"]["tables read by sequential scans"]
    assert "public.orders" in tables and "240000" in tables and "100%" in tables and "users" not in tables
    assert "db.slow_queries" in record["evidence"]["find the query"]
    assert "through a migration" in record["resolution"]
    loose = sweep(pytester, app_url(postgres.url, name), "db.missing_indexes",
                  "thresholds = { seq_scan_rows = 1000000 }\n")
    assert loose["outcome"] == "passed"


def test_checksums_on_and_no_failure_passes(pytester: pytest.Pytester, checksummed: Postgres) -> None:
    name = make_database(checksummed.url, with_statements=False)
    with admin(checksummed.url, name) as conn:
        assert conn.execute("SHOW data_checksums").fetchone() == ("on",)
        conn.execute("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g")
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1000,)
    record = sweep(pytester, app_url(checksummed.url, name), "db.no_corruption")
    assert record["outcome"] == "passed", record
    assert record["evidence"]["data checksums"].startswith("on; 0 checksum failures in ")


def test_checksums_off_is_skipped_saying_how_to_enable_them(pytester: pytest.Pytester, postgres: Postgres) -> None:
    name = make_database(postgres.url, with_statements=False)
    record = sweep(pytester, app_url(postgres.url, name), "db.no_corruption")
    assert record["outcome"] == "skipped"
    assert record["message"].startswith(f"data checksums are off on the cluster of {name}")
    assert "initdb --data-checksums" in record["message"] and "pg_checksums --enable" in record["message"]


def test_a_counted_checksum_failure_is_corruption_named_by_database_and_time() -> None:
    last = datetime(2024, 5, 1, 3, 12, 9)
    found = checksum_verdict([(None, 0, None), ("app", 3, last), ("postgres", 0, None)])
    assert not found.ok
    assert found.cause == "3 data page checksum failure(s): app (3), the last at 2024-05-01 03:12:09"
    assert "2024-05-01 03:12:09" in found.evidence["pg_stat_database"]
    shared = checksum_verdict([(None, 1, None)])
    assert shared.cause == "1 data page checksum failure(s): (shared catalogs) (1)"
    assert checksum_verdict([(None, 0, None), ("app", 0, None)]).ok


def test_sequential_scan_rule() -> None:
    rows = [
        ("public", "big", 20, 400000, None, 20000),  # no index at all
        ("public", "mixed", 20, 400000, 20, 20000),  # half of its scans
        ("public", "indexed", 20, 400000, 1000, 20000),  # mostly by its index
        ("public", "small", 500, 5000, 0, 10),  # tiny: scanning it is right
        ("app", "once", 1, 20000, 0, 20000),  # one read (a dump): not a pattern
    ]
    found = seq_scanned(rows, 10000, 50.0)
    assert [t[0] for t in found] == ["public.big", "public.mixed"]
    assert found[0][3] is None and found[1][5] == 50.0
