"""The post-mortem draft: rendered from check records, read back as Markdown."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from declared import declared_topics

from pytest_opscheck.model import CheckRecord
from pytest_opscheck.redact import Redactor
from pytest_opscheck.report.postmortem import render_postmortem
from pytest_opscheck.runbook.parse import parse_runbook

DATA = Path(__file__).parent / "data" / "runbooks"
FASTAPI = parse_runbook(DATA / "000_903c53a40e61f8c6.txt")
NODE = parse_runbook(DATA / "003_3066b0f70d06933e.txt")
SECRET = "PLANTED-pm-secret"
STARTED = datetime(2024, 5, 1, 9, 59, 58)
NOW = datetime(2024, 5, 1, 10, 12, 4)

DB_STEPS = """\
```bash
# Restart database
docker compose restart db

# Verify connection string in .env
grep POSTGRES .env

# Check migrations
docker compose exec backend alembic current
docker compose logs db --tail=50
```

Runbook: docs/runbook.md#database-connection-errors (Database Connection Errors)"""


TOPICS = declared_topics()


def record(
    check_id: str, severity: str, outcome: str, message: str = "", resolution: str = "", **extra: object
) -> CheckRecord:
    return CheckRecord(
        check_id=check_id,
        nodeid=f"checks/test_x.py::test_{check_id}",
        severity=severity,
        outcome=outcome,
        duration=0.1,
        message=message,
        resolution=resolution,
        topics=TOPICS.get(check_id, ()),
        **extra,  # type: ignore[arg-type]
    )


RECORDS = [
    record("auth.login", "P2", "failed", f"login refused; password={SECRET}", "1. Verify `SECRET_KEY`\n2. Restart"),
    record("backend.health", "P1", "failed", f"GET /health answered 502 ({SECRET})", "Restart the backend"),
    record("db.reachable", "P1", "failed", "connection refused by 127.0.0.1:5432", DB_STEPS),
    record("ws.ping", "P2", "failed", "no pong within 5 s", "- restart backend", caused_by="stack.services_running"),
    record("frontend.root", "P1", "passed"),
    record("email.configured", "P3", "skipped", "not configured: smtp"),
]
FIRST_FAILURES = {
    "checks/test_x.py::test_db.reachable": datetime(2024, 5, 1, 10, 0, 3),
    "checks/test_x.py::test_backend.health": datetime(2024, 5, 1, 10, 0, 5),
    "auth.login": datetime(2024, 5, 1, 10, 1, 40),  # keyed by check id works too
    "checks/test_x.py::test_ws.ping": datetime(2024, 5, 1, 10, 0, 9),
}
REDACT = Redactor([SECRET])
CAUSES = {"backend.health": "db.reachable", "auth.login": "db.reachable"}


def draft(
    runbook: object = FASTAPI,
    records: list[CheckRecord] = RECORDS,
    causes: dict[str, str] = CAUSES,
    redact: Callable[[str], str] = REDACT,
) -> str:
    """The draft of `records`, each attributed to its root as `causes` says (check id -> root check)."""
    attributed = [replace(r, caused_by=causes.get(r.check_id, r.caused_by)) for r in records]
    return render_postmortem(attributed, STARTED, NOW, FIRST_FAILURES, runbook, redact)  # type: ignore[arg-type]


def part(markdown: str, heading: str) -> list[str]:
    """The non-empty lines under `### heading`, up to the next heading."""
    lines = markdown.splitlines()
    start = lines.index(f"### {heading}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("#")), len(lines))
    return [line for line in lines[start:end] if line.strip()]


def field(markdown: str, name: str) -> str:
    match = re.search(rf"^\*\*{name}\*\*: (.*)$", markdown, re.M)
    assert match, name
    return match.group(1)


def test_the_draft_follows_the_runbook_template() -> None:
    text = draft()
    headings = [line for line in text.splitlines() if line.startswith("#") or line.startswith("**")]
    assert [h.split(":")[0] for h in headings] == [
        "## Incident",
        "**Date**",
        "**Duration**",
        "**Severity**",
        "**Impact**",
        "### Timeline",
        "### Root Cause",
        "### Resolution",
        "### Action Items",
        "### Escalation",
        "### Lessons Learned",
    ]
    # The worst root failure names the incident, by its runbook section.
    assert headings[0] == (
        "## Incident: Database Connection Errors — db.reachable: connection refused by 127.0.0.1:5432"
    )
    assert field(text, "Date") == "2024-05-01"
    assert field(text, "Duration") == "12 min so far (detected 10:00:03, draft 10:12:04)"
    assert field(text, "Severity") == "P1 - Critical (response time: Immediate)"
    assert field(text, "Impact").startswith(
        "4 failing checks (P1: db.reachable, backend.health; P2: ws.ping, auth.login)."
    )
    assert part(text, "Resolution") == ["[What was done to fix it]"]
    assert part(text, "Lessons Learned") == ["- What went well: [fill in]", "- What could be improved: [fill in]"]


def test_timeline_lists_each_failure_at_its_first_failure_time() -> None:
    timeline = part(draft(), "Timeline")
    assert timeline[:6] == [
        "- 09:59:58 - opscheck sweep started",
        "- 10:00:03 - Incident detected",
        "- 10:00:03 - db.reachable failed: connection refused by 127.0.0.1:5432",
        "- 10:00:05 - backend.health failed: GET /health answered 502 (***)",
        "- 10:00:09 - ws.ping failed: no pong within 5 s",
        "- 10:01:40 - auth.login failed: login refused; password=***",
    ]
    # The runbook escalates a P1 unresolved in 30 minutes: when that falls due.
    assert timeline[6] == "- 10:30:03 - Escalation due if still unresolved (P1 after 30 minutes)"
    assert timeline[7:] == [
        "- HH:MM - Team notified",
        "- HH:MM - Root cause identified",
        "- HH:MM - Fix deployed",
        "- HH:MM - Service restored",
    ]


def test_root_cause_lists_root_checks_first() -> None:
    assert part(draft(), "Root Cause") == [
        "Candidates, root checks first: [confirm one and explain it]",
        "- **db.reachable** (P1): connection refused by 127.0.0.1:5432 — explains: backend.health, auth.login",
        "- **stack.services_running** (attributed; not failing in this sweep) — explains: ws.ping",
        "- backend.health (P1): GET /health answered 502 (***) (caused by db.reachable)",
        "- ws.ping (P2): no pong within 5 s (caused by stack.services_running)",
        "- auth.login (P2): login refused; password=*** (caused by db.reachable)",
    ]


def test_a_chain_of_causes_ends_at_its_root_and_a_cycle_does_not_hang() -> None:
    records = [record("a.one", "P2", "failed", "one"), record("b.two", "P1", "failed", "two"),
               record("c.three", "P3", "failed", "three")]
    roots = part(draft(None, records, {"a.one": "b.two", "b.two": "c.three"}), "Root Cause")
    assert roots[1] == "- **c.three** (P3): three — explains: b.two, a.one"
    cycle = part(draft(None, records, {"a.one": "b.two", "b.two": "a.one"}), "Root Cause")
    assert cycle[1:4] == ["- **b.two** (P1): two", "- **a.one** (P2): one", "- **c.three** (P3): three"]


def test_action_items_one_per_failed_check_from_its_resolution() -> None:
    items = part(draft(), "Action Items")
    assert items == [
        "- [ ] db.reachable: `docker compose restart db; grep POSTGRES .env;"
        " docker compose exec backend alembic current` (+1 more)"
        " (runbook: docs/runbook.md#database-connection-errors (Database Connection Errors)) - Owner - Due date",
        "- [ ] backend.health (after db.reachable): Restart the backend"
        " (runbook: Application Not Starting #application-not-starting) - Owner - Due date",
        "- [ ] ws.ping (after stack.services_running): restart backend - Owner - Due date",
        "- [ ] auth.login (after db.reachable): Verify `SECRET_KEY`"
        " (runbook: Authentication Failures #authentication-failures) - Owner - Due date",
    ]


def test_severity_target_from_the_node_runbook_and_without_a_runbook() -> None:
    node = draft(NODE)
    assert field(node, "Severity") == "P1 - Critical (response time: 15 minutes)"
    assert node.startswith("## Incident: P1: Service Outage — db.reachable")
    assert "### Escalation" not in node  # this runbook has no escalation path
    bare = draft(None)
    assert field(bare, "Severity") == "P1 - Critical (respond immediately (within 15 min))"
    assert bare.startswith("## Incident: db.reachable: connection refused by 127.0.0.1:5432\n")
    assert "Escalation" not in bare


def test_escalation_only_when_a_p1_fails() -> None:
    assert part(draft(), "Escalation")[1] == "2. If unresolved in 30 minutes for P1, escalate to senior engineer"
    p2_only = [r for r in RECORDS if r.severity != "P1"]
    text = draft(FASTAPI, p2_only, {})
    assert field(text, "Severity") == "P2 - High (response time: < 1 hour)"
    assert "Escalation" not in text


def test_a_passing_sweep_leaves_the_template_to_fill() -> None:
    text = draft(FASTAPI, [record("backend.health", "P1", "passed")], {})
    assert text.startswith("## Incident: no failing check\n")
    assert field(text, "Severity") == "none (no check failed)"
    assert part(text, "Action Items") == ["- [ ] Action 1 - Owner - Due date"]


def test_no_secret_and_no_injected_markdown_reaches_the_draft() -> None:
    long_message = "x" * 190 + f" token={SECRET} " + "y" * 50  # the secret sits where the line is cut
    records = [
        *RECORDS,
        record("team.evil", "P2", "failed", f"bad\n## Injected heading\n{SECRET}", f"```\necho {SECRET}\n```"),
        record("team.long", "P3", "failed", long_message, f"Rotate {SECRET}"),
    ]
    text = draft(FASTAPI, records)
    assert SECRET not in text and "PLANTED" not in text
    assert not any(line.startswith("## Injected") for line in text.splitlines())
    assert "- [ ] team.evil: `echo ***` - Owner - Due date" in text
    # Every string goes through the redactor, the runbook's own text included.
    shouting = draft(FASTAPI, RECORDS, CAUSES, lambda s: s.replace("e", "E"))
    assert "senior engineer" not in shouting and "db.reachable" not in shouting and "sEnior EnginEEr" in shouting
