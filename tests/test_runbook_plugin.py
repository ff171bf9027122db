"""The runbook in a sweep, as pytest runs it: linked sections, escalation, post-mortem, coverage listing."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from pytest_opscheck.runbook.parse import diagnosis_sections, parse_runbook

DATA = Path(__file__).parent / "data" / "runbooks"
FASTAPI = DATA / "000_903c53a40e61f8c6.txt"
NODE = DATA / "003_3066b0f70d06933e.txt"


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
            "P1 CRITICAL FAILED team.database — response time: Immediate",
            "      ```bash",
            "      # Restart database",
            "      docker compose restart db",
            "      Runbook: runbook.md#database-connection-errors (Database Connection",  # 80 columns
            "        Errors)",
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
    for heading in ("**Date**", "**Duration**", "**Severity**: P1 - Critical", "**Impact**: 2 failing checks",
                    "### Timeline", "### Root Cause", "### Action Items", "### Escalation", "### Lessons Learned"):
        assert heading in draft
    assert "failed: db: connection refused by 127.0.0.1:5432" in draft
    assert any(line.startswith("- [ ] team.database: ") and line.endswith(" - Owner - Due date")
               for line in draft.splitlines())
    assert "PLANTED-pm-secret-77" not in draft + result.stdout.str()


def test_missing_section_fails_that_check_with_suggestions(pytester: pytest.Pytester) -> None:
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
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the check alone fails with its mistake (SPEC.md)
    section = " ".join(result.stdout.str().split("= opscheck =", 1)[1].split())
    assert "P1 CRITICAL FAILED team.database" in section
    assert "no section #database-errors (nearest: #database-connection-errors," in section


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
