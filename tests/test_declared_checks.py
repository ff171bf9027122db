"""A check is one file: what it is (topics, dependencies, service) is declared on it, and coverage, the
runbook link and root-cause attribution all read that declaration — no other file touched."""

from __future__ import annotations

import json
import textwrap

import pytest
from realservices import free_port

RUNBOOK = """# Runbook

## Severity Levels

| Level | Description | Response Time |
|-------|-------------|---------------|
| P1 | Critical | Immediate |
| P2 | High | 1 hour |

## Common Issues

### Database Connection Errors

**Diagnosis:**
```bash
docker compose ps db
```

**Resolution:**
1. Restart the database: `docker compose restart db`

### Invoices Not Generated

**Diagnosis:**
```bash
docker compose logs worker
```
"""

TEAM_CHECK = '''
import pytest
from pytest_opscheck.verdict import fail


@pytest.mark.severity("P2")
@pytest.mark.topics("database")
@pytest.mark.depends_on("db")
def test_invoice_totals():
    """Recompute yesterday's invoice totals: docker compose exec worker invoices --check"""
    fail("the invoice job answered 500: could not read from the database")
'''


def team_project(pytester: pytest.Pytester, db_port: int) -> None:
    pytester.makefile(
        ".toml",
        opscheck=f'checks = ["team"]\nrunbook = "docs/runbook.md"\ntimeout = 2\n'
        f'database_url = "postgresql://app:${{TEAM_DB_PW}}@127.0.0.1:{db_port}/app"\n',
    )
    (pytester.mkdir("docs") / "runbook.md").write_text(RUNBOOK)
    (pytester.mkdir("team") / "test_billing.py").write_text(textwrap.dedent(TEAM_CHECK))


def test_a_team_check_is_covered_linked_and_attributed_from_its_own_declaration(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_DB_PW", "PLANTED-team-pw-8812")
    team_project(pytester, free_port())  # nothing listens there: the database is down

    coverage = pytester.runpytest("--opscheck", "--opscheck-coverage", "-p", "no:cacheprovider")
    assert coverage.ret == pytest.ExitCode.OK
    coverage.stdout.fnmatch_lines(
        ["Database Connection Errors (#database-connection-errors): *billing.invoice_totals*"]
    )

    result = pytester.runpytest(
        "--opscheck", "-p", "no:cacheprovider", "-k", "db.reachable or billing.", "--opscheck-json", "out.json"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    records = {r["id"]: r for r in json.loads((pytester.path / "out.json").read_text())["checks"]}
    team = records["billing.invoice_totals"]
    assert records["db.reachable"]["outcome"] == "failed" and records["db.reachable"]["caused_by"] is None
    assert team["caused_by"] == "db.reachable"
    assert team["resolution"].startswith("Fix db.reachable first")
    result.stdout.fnmatch_lines(
        ["*FAILED billing.invoice_totals — caused by db.reachable*", "*fix first: db.reachable"]
    )
    assert "PLANTED-team-pw-8812" not in result.stdout.str()


def test_the_runbook_link_comes_from_the_declared_topic(pytester: pytest.Pytester) -> None:
    team_project(pytester, free_port())
    result = pytester.runpytest(
        "--opscheck", "-p", "no:cacheprovider", "-k", "billing.", "--opscheck-json", "out.json"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    (record,) = json.loads((pytester.path / "out.json").read_text())["checks"]
    # Alone, it is its own root: its steps and the link to the section its topic names.
    assert record["caused_by"] is None
    assert "docker compose exec worker invoices --check" in record["resolution"]
    assert "Runbook: docs/runbook.md#database-connection-errors (Database Connection Errors)" in record["resolution"]


def test_an_unknown_topic_fails_that_check_naming_it(pytester: pytest.Pytester) -> None:
    """Neither built in nor a heading of a team runbook: the check fails on its own, the sweep goes on."""
    team_project(pytester, free_port())
    (pytester.path / "team" / "test_billing.py").write_text(
        textwrap.dedent(TEAM_CHECK).replace('topics("database")', 'topics("billing")')
    )
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-k", "billing.")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["P1 CRITICAL FAILED billing.*", "*unknown topic 'billing': use a built-in topic", "*(outage, database*"]
    )
