"""Database secrets on a real PostgreSQL: a password holding `/`, `@`, `#` and `?` interpolated into
database_url still connects (its userinfo is percent-encoded) and is shown nowhere; SQL literals of other
sessions, dollar-quoted or E'…' escaped, never reach the evidence."""

from __future__ import annotations

import secrets
import time

import pytest
from dbhelpers import admin, make_database
from leakcheck import REPORTS, run_sweep
from realservices import Postgres


def test_password_with_url_characters_connects_and_is_withheld(
    pytester: pytest.Pytester, postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    from psycopg import sql

    password = f"pa/ss@{secrets.token_hex(8)}#?:x"
    role = f"slash_{secrets.token_hex(3)}"
    name = make_database(postgres.url)
    with admin(postgres.url, name) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        conn.execute(sql.SQL("GRANT pg_read_all_stats TO {}").format(sql.Identifier(role)))
    monkeypatch.setenv("DB_PW", password)
    config = f'database_url = "postgresql://{role}:${{DB_PW}}@127.0.0.1:{postgres.port}/{name}"\ntimeout = 3\n'
    result, found, outputs = run_sweep(pytester, config, "db.reachable")
    assert found["db.reachable"]["outcome"] == "passed", found["db.reachable"]["message"]
    assert f"db postgresql://{role}:***@127.0.0.1:{postgres.port}/{name}" in result.stdout
    outputs.require(*REPORTS)
    outputs.assert_absent(password, "DB_PW")

    monkeypatch.setenv("DB_PW", password + "-wrong")  # refused for what it is, not "DNS lookup failed for pa"
    _, found, outputs = run_sweep(pytester, config, "db.reachable")
    assert found["db.reachable"]["message"] == f"db: authentication failed for user {role} on 127.0.0.1:{postgres.port}"
    outputs.assert_absent(password, "DB_PW")


def test_literals_of_other_sessions_are_masked(
    pytester: pytest.Pytester, postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    dollar, escaped, plain = (f"lit{secrets.token_hex(10)}" for _ in range(3))
    name = make_database(postgres.url)
    holder = admin(postgres.url, name)
    holder.autocommit = False
    # The session's last statement, kept in pg_stat_activity while its transaction stays open.
    holder.execute(f"SELECT $tok${dollar}$tok$ AS a, E'{escaped}\\'s' AS b, 'x''{plain}' AS c -- {dollar}")
    try:
        time.sleep(1.5)
        monkeypatch.setenv("OPSCHECK_TEST_DB_PASSWORD", "PLANTED-db-pw-7e3a")
        config = (f'database_url = "postgresql://app:${{OPSCHECK_TEST_DB_PASSWORD}}@127.0.0.1:{postgres.port}/{name}"\n'
                  "thresholds = { long_transaction_seconds = 1 }\n")
        _, found, outputs = run_sweep(pytester, config, "db.no_long_transactions")
    finally:
        holder.rollback()
        holder.close()
    record = found["db.no_long_transactions"]
    assert record["outcome"] == "failed"
    assert "SELECT $…$ AS a, E'…' AS b, '…' AS c --…" in record["evidence"]["sessions"]
    for planted in (dollar, escaped, plain):
        outputs.assert_absent(planted, "a literal of another session")


@pytest.mark.parametrize("query", [
    "SELECT 1 /* /* */ hunter2secret */",
    "SELECT 1 /* a /* b /* c */ */ hunter2secret */ FROM t",
    "SELECT 'hunter2secret'",
    "SELECT $tag$ hunter2secret $tag$",
    "SELECT E'it\\'s hunter2secret'",
    "SELECT 1 -- hunter2secret",
    "ALTER ROLE app PASSWORD 'hunter2secret",  # unterminated: masked to the end
])
def test_another_sessions_query_is_shown_masked_past_nested_comments(query: str) -> None:
    from pytest_opscheck.probes.diagnosis.database import query_text

    assert "hunter2secret" not in query_text(query)
    assert query_text(query).startswith(("SELECT", "ALTER ROLE"))
