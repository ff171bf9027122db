"""The runbook as the one source: parsing, linked resolution steps, coverage, escalation, post-mortem."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from pytest_opscheck.catalogue import CHECK_TOPICS, coverage, format_coverage
from pytest_opscheck.runbook import (
    RunbookError,
    diagnosis_sections,
    escalate_after,
    escalation,
    parse_runbook,
    resolution,
    severity_targets,
    slug,
)

DATA = Path(__file__).parent / "data" / "runbooks"
FASTAPI = DATA / "000_903c53a40e61f8c6.txt"
NODE = DATA / "003_3066b0f70d06933e.txt"


def test_shared_runbooks_parse_into_their_diagnoses() -> None:
    assert [s.anchor for s in diagnosis_sections(parse_runbook(FASTAPI))] == [
        "application-not-starting",
        "database-connection-errors",
        "frontend-404-errors",
        "api-500-errors",
        "authentication-failures",
        "email-not-sending",
    ]
    assert [s.anchor for s in diagnosis_sections(parse_runbook(NODE))] == [
        "p1-service-outage",
        "p2-authentication-failure",
        "p2-websocket-disconnections",
        "p3-slow-api-responses",
    ]


def test_severity_tables_list_and_table_forms() -> None:
    assert severity_targets(parse_runbook(FASTAPI)) == {
        "P1": "Immediate", "P2": "< 1 hour", "P3": "< 4 hours", "P4": "Next business day",
    }
    node = {"P1": "15 minutes", "P2": "1 hour", "P3": "4 hours", "P4": "24 hours"}
    assert severity_targets(parse_runbook(NODE)) == node


def test_escalation_path_and_when() -> None:
    book = parse_runbook(FASTAPI)
    assert escalation(book)[1] == "If unresolved in 30 minutes for P1, escalate to senior engineer"
    assert escalate_after(book) == "30 minutes"
    assert escalation(parse_runbook(NODE)) == []


def test_resolution_blocks_keep_fenced_commands() -> None:
    book = parse_runbook(FASTAPI)
    db = resolution(book.section("database-connection-errors"))
    assert db.startswith("```bash\n# Restart database\ndocker compose restart db")
    assert db.rstrip().endswith("```")
    node = parse_runbook(NODE)
    outage = resolution(node.section("p1-service-outage"))
    assert outage.startswith("**Database Down**") and "docker-compose restart postgres" in outage
    assert "Initial Response" not in outage


def test_every_diagnosis_of_both_runbooks_is_covered_by_the_catalogue() -> None:
    for path in (FASTAPI, NODE):
        lines = format_coverage(coverage(parse_runbook(path), dict.fromkeys(CHECK_TOPICS)))
        assert lines[-1] == "every diagnosis section is covered", lines


def odd(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "runbook.md"
    path.write_text(textwrap.dedent(text))
    return path


def test_odd_shapes(tmp_path: Path) -> None:
    book = parse_runbook(
        odd(
            tmp_path,
            """\
            # Ops
            ## Incidents
            ### Queue `backlog` (workers!)
            Symptoms: jobs wait.
            #### Diagnosis
            ```bash
            # not a heading inside a fence
            redis-cli llen jobs
            ```
            ### Queue backlog workers
            **Diagnosis:** look at it.
            No resolution block here.
            ### Queue `backlog` (workers!)
            **Diagnosis:** the duplicate.
            """,
        )
    )
    anchors = [s.anchor for s in book.sections]
    assert anchors == ["ops", "incidents", "queue-backlog-workers", "diagnosis", "queue-backlog-workers-1",
                       "queue-backlog-workers-2"]
    assert slug("P1: Service Outage") == "p1-service-outage"
    assert "redis-cli llen jobs" in book.section("queue-backlog-workers").text
    whole = resolution(book.section("queue-backlog-workers-1"))
    assert whole == "**Diagnosis:** look at it.\nNo resolution block here."


def test_errors_name_file_line_and_nearest_anchors(tmp_path: Path) -> None:
    with pytest.raises(RunbookError, match=r"runbook.md:3: a ``` code block opened here is never closed"):
        parse_runbook(odd(tmp_path, "# A\n\n```bash\nls\n"))
    with pytest.raises(RunbookError, match="runbook not found"):
        parse_runbook(tmp_path / "missing.md")
    book = parse_runbook(FASTAPI)
    with pytest.raises(RunbookError, match=r"no section #database-conection-errors \(nearest: #database-connection"):
        book.section("database-conection-errors")


def runbook_project(pytester: pytest.Pytester, runbook: Path, checks: str) -> None:
    shutil.copy(runbook, pytester.path / "runbook.md")
    pytester.makefile(".toml", opscheck='checks = ["ops"]\nrunbook = "runbook.md"\n')
    pytester.mkdir("ops")
    (pytester.path / "ops" / "test_team.py").write_text(textwrap.dedent(checks))


TEAM_CHECKS = """
import pytest
from pytest_opscheck.verdict import fail

@pytest.mark.severity("P1")
@pytest.mark.runbook("runbook.md#database-connection-errors")
def test_database():
    fail("db: connection refused by 127.0.0.1:5432")

@pytest.mark.severity("P2")
def test_after(request):
    fail("db: connection refused by 127.0.0.1:5432 PLANTED-pm-secret-77")
"""


def test_linked_section_escalation_and_postmortem(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCHECK_PASSWORD", "PLANTED-pm-secret-77")
    runbook_project(pytester, FASTAPI, TEAM_CHECKS)
    (pytester.path / "opscheck.toml").write_text(
        'checks = ["ops"]\nrunbook = "runbook.md"\nauth = { login_path = "/l", password = "${OPSCHECK_PASSWORD}" }\n'
    )
    result = pytester.runpytest(
        "--opscheck", "-p", "no:cacheprovider", "-k", "team.", "--opscheck-json", "out.json",
        "--opscheck-postmortem", "pm.md",
    )
    result.stdout.fnmatch_lines(
        [
            "P1 (response time: Immediate)  FAILED team.database",
            "      ```bash",
            "      # Restart database",
            "      docker compose restart db",
            "      Runbook: runbook.md#database-connection-errors (Database Connection Errors)",
            "P1 CRITICAL: 1 check failing (+1 lower) — response time: Immediate",
            "escalation:",
            "  escalate a P1 still failing after 30 minutes",
            "  2. If unresolved in 30 minutes for P1, escalate to senior engineer",
        ]
    )
    record = json.loads((pytester.path / "out.json").read_text())["checks"][0]
    assert "docker compose restart db" in record["resolution"]
    draft = (pytester.path / "pm.md").read_text()
    assert draft.startswith("## Incident: team.database: db: connection refused by 127.0.0.1:5432")
    for heading in ("**Date**", "**Duration**", "**Severity**: P1 - Critical", "**Impact**: 2 check(s) failing",
                    "### Timeline", "### Root Cause", "### Action Items", "### Escalation", "### Lessons Learned"):
        assert heading in draft
    assert "failed: db: connection refused by 127.0.0.1:5432" in draft
    assert "- [ ] team.database: ```bash - Owner - Due date" in draft
    assert "PLANTED-pm-secret-77" not in draft + result.stdout.str()


def test_missing_section_fails_collection_with_suggestions(pytester: pytest.Pytester) -> None:
    runbook_project(
        pytester,
        FASTAPI,
        """
        import pytest

        @pytest.mark.severity("P1")
        @pytest.mark.runbook("runbook.md#database-errors")
        def test_database():
            pass
        """,
    )
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-k", "team.")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*no section #database-errors (nearest: #database-connection-errors*"])


def test_malformed_runbook_is_a_usage_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "runbook.md").write_text("# Runbook\n\n```bash\nls\n")
    pytester.makefile(".toml", opscheck='runbook = "runbook.md"\n')
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: runbook: *runbook.md:3: a ``` code block opened here is never closed"])


@pytest.mark.parametrize("runbook", [FASTAPI, NODE], ids=["fastapi", "node"])
def test_coverage_listing_of_both_runbooks(pytester: pytest.Pytester, runbook: Path) -> None:
    anchor = "#database-connection-errors" if runbook == FASTAPI else "#p1-service-outage"
    team = TEAM_CHECKS.replace("#database-connection-errors", anchor)
    runbook_project(pytester, runbook, team)
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "--opscheck-coverage")
    assert result.ret == pytest.ExitCode.OK
    out = result.stdout.str()
    assert "= opscheck runbook coverage =" in out
    assert "every diagnosis section is covered" in out
    for section in diagnosis_sections(parse_runbook(runbook)):
        assert f"{section.title} (#{section.anchor}): " in out
    if runbook == FASTAPI:
        result.stdout.fnmatch_lines(["Database Connection Errors (#database-connection-errors): *team.database*"])
    else:
        result.stdout.fnmatch_lines(["P1: Service Outage (#p1-service-outage): *team.database*"])
    assert "every diagnosis section is covered" in (pytester.path / "opscheck-report.html").read_text()
