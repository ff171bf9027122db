"""The runbook as the one source: parsing, anchors, resolution steps, severity targets, escalation,
diagnosis sections and the catalogue's coverage of them, on the two shared runbooks and odd ones."""

from __future__ import annotations

import ast
from pathlib import Path, PurePosixPath

import pytest
from declared import declared_topics

from pytest_opscheck.catalogue import (
    TOPICS,
    coverage,
    format_coverage,
    matching_section,
)
from pytest_opscheck.runbook.parse import (
    Runbook,
    RunbookError,
    anchor_url,
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
ODD = DATA / "odd_queue_runbook.md"
CHECKS = Path(__file__).parent.parent / "checks"


CHECK_TOPICS = declared_topics()
DECLARED = {check_id: (None, topics) for check_id, topics in CHECK_TOPICS.items()}


def topics_for(check_id: str) -> tuple[str, ...]:
    return CHECK_TOPICS.get(check_id.partition("[")[0], ())


def source_lines(path: Path, first: int, last: int) -> str:
    """Lines `first`..`last` (1-based, inclusive) of `path`, verbatim."""
    return "\n".join(path.read_text(encoding="utf-8").splitlines()[first - 1 : last])


def write(tmp_path: Path, text: str, name: str = "runbook.md") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# The two shared runbooks


def test_fastapi_runbook_sections_anchors_and_nesting() -> None:
    book = parse_runbook(FASTAPI)
    assert [(s.level, s.anchor, s.line) for s in book.sections] == [
        (1, "incident-response-runbook", 1),
        (2, "incident-classification", 3),
        (3, "severity-levels", 5),
        (2, "common-incidents", 29),
        (3, "application-not-starting", 31),
        (3, "database-connection-errors", 67),
        (3, "frontend-404-errors", 92),
        (3, "api-500-errors", 103),
        (3, "authentication-failures", 122),
        (3, "email-not-sending", 140),
        (2, "escalation-path", 156),
        (2, "post-incident", 163),
        (2, "emergency-contacts", 171),
        (2, "useful-commands", 178),
        (2, "monitoring", 205),
    ]
    assert [s.anchor for s in book.roots] == ["incident-response-runbook"]
    incidents = book.section("common-incidents")
    assert [c.title for c in incidents.children][:2] == ["Application Not Starting", "Database Connection Errors"]
    # The "# Check container status" comment inside the fence is no heading.
    assert "# Check container status" in book.section("application-not-starting").body
    assert book.section("#monitoring").body.endswith("For operational procedures, see [procedures/](./procedures/)")


def test_node_runbook_sections_anchors_and_nesting() -> None:
    book = parse_runbook(NODE)
    assert book.anchors == [
        "incident-response-playbook",
        "severity-levels",
        "p1-service-outage",
        "initial-response-first-15-minutes",
        "diagnosis",
        "recovery-actions",
        "p2-authentication-failure",
        "symptoms",
        "diagnosis-1",
        "resolution",
        "p2-websocket-disconnections",
        "symptoms-1",
        "diagnosis-2",
        "resolution-1",
        "p3-slow-api-responses",
        "symptoms-2",
        "diagnosis-3",
        "resolution-2",
        "post-incident",
        "checklist",
        "post-mortem-template",
    ]
    outage = book.section("p1-service-outage")
    assert (outage.title, outage.level, outage.line, outage.intro) == ("P1: Service Outage", 2, 14, "")
    assert [c.title for c in outage.children] == [
        "Initial Response (First 15 minutes)",
        "Diagnosis",
        "Recovery Actions",
    ]
    # The body holds the sub-sections and loses the trailing horizontal rule.
    assert outage.body.startswith("### Initial Response (First 15 minutes)")
    assert outage.body.endswith("docker-compose up -d frontend\n```")


def test_resolution_of_fastapi_sections_keeps_fenced_commands_verbatim() -> None:
    book = parse_runbook(FASTAPI)
    assert resolution(book.section("database-connection-errors")) == source_lines(FASTAPI, 81, 90)
    assert resolution(book.section("application-not-starting")) == source_lines(FASTAPI, 55, 65)
    assert resolution(book.section("frontend-404-errors")) == source_lines(FASTAPI, 99, 101)
    assert resolution(book.section("authentication-failures")) == source_lines(FASTAPI, 136, 138)
    # Diagnosis and causes come before the label: left out.
    assert "docker compose ps" not in resolution(book.section("application-not-starting"))


def test_resolution_of_node_sections_from_sub_headings() -> None:
    book = parse_runbook(NODE)
    outage = resolution(book.section("p1-service-outage"))
    assert outage == source_lines(NODE, 57, 85)
    assert outage.startswith("**Database Down**\n```bash\n# Restart PostgreSQL")
    assert "Initial Response" not in outage and "docker stats" not in outage
    assert resolution(book.section("p2-authentication-failure")) == source_lines(NODE, 111, 120)
    assert resolution(book.section("p3-slow-api-responses")) == source_lines(NODE, 181, 192)


def test_severity_targets_of_both_forms() -> None:
    assert severity_targets(parse_runbook(FASTAPI)) == {
        "P1": "Immediate",
        "P2": "< 1 hour",
        "P3": "< 4 hours",
        "P4": "Next business day",
    }
    assert severity_targets(parse_runbook(NODE)) == {
        "P1": "15 minutes",
        "P2": "1 hour",
        "P3": "4 hours",
        "P4": "24 hours",
    }


def test_escalation_path_and_when_to_escalate_a_p1() -> None:
    book = parse_runbook(FASTAPI)
    assert escalation(book) == [
        "On-call engineer attempts resolution",
        "If unresolved in 30 minutes for P1, escalate to senior engineer",
        "If data loss suspected, notify tech lead",
        "For security incidents, immediately notify security team",
    ]
    assert escalate_after(book) == "30 minutes"
    node = parse_runbook(NODE)
    assert (escalation(node), escalate_after(node)) == ([], None)


def test_diagnosis_sections_of_both_runbooks() -> None:
    assert [(s.title, s.anchor) for s in diagnosis_sections(parse_runbook(FASTAPI))] == [
        ("Application Not Starting", "application-not-starting"),
        ("Database Connection Errors", "database-connection-errors"),
        ("Frontend 404 Errors", "frontend-404-errors"),
        ("API 500 Errors", "api-500-errors"),
        ("Authentication Failures", "authentication-failures"),
        ("Email Not Sending", "email-not-sending"),
    ]
    assert [(s.title, s.anchor) for s in diagnosis_sections(parse_runbook(NODE))] == [
        ("P1: Service Outage", "p1-service-outage"),
        ("P2: Authentication Failure", "p2-authentication-failure"),
        ("P2: WebSocket Disconnections", "p2-websocket-disconnections"),
        ("P3: Slow API Responses", "p3-slow-api-responses"),
    ]


# The catalogue and coverage


def builtin_check_ids() -> set[str]:
    """The ids of the built-in checks, read from the checks folder (file and function, less `test_`)."""
    ids = set()
    for path in CHECKS.glob("test_*.py"):
        module = ast.parse(path.read_text(encoding="utf-8"))
        prefix = path.stem.removeprefix("test_")
        ids |= {f"{prefix}.{node.name.removeprefix('test_')}" for node in module.body
                if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}
    return ids


def test_catalogue_names_every_built_in_check_and_only_known_topics() -> None:
    assert set(CHECK_TOPICS) == builtin_check_ids()
    assert len(CHECK_TOPICS) == 41  # 39, and the two Swarm checks
    for check_id, topics in CHECK_TOPICS.items():
        assert topics and set(topics) <= set(TOPICS), check_id


@pytest.mark.parametrize("path", [FASTAPI, NODE], ids=["fastapi", "node"])
def test_every_diagnosis_section_of_both_runbooks_is_covered(path: Path) -> None:
    book = parse_runbook(path)
    rows = coverage(book, DECLARED)
    assert [row.section for row in rows] == diagnosis_sections(book)
    assert all(row.checks for row in rows), format_coverage(rows)
    assert format_coverage(rows)[-1] == "every diagnosis section is covered"


def test_coverage_listing_of_both_runbooks() -> None:
    fastapi = format_coverage(coverage(parse_runbook(FASTAPI), DECLARED))
    assert len(fastapi) == 7
    assert fastapi[0].startswith("Application Not Starting (#application-not-starting): ")
    for name in ("stack.services_running", "stack.no_crash_loop", "stack.required_env", "stack.ports_bound"):
        assert name in fastapi[0]
    assert fastapi[2] == (
        "Frontend 404 Errors (#frontend-404-errors): frontend.assets, frontend.root, frontend.spa_routes"
    )
    assert fastapi[3] == (
        "API 500 Errors (#api-500-errors): api.no_server_errors, db.migrations_current, stack.logs_clean"
    )
    assert fastapi[5] == "Email Not Sending (#email-not-sending): email.configured, email.smtp_session"
    node = format_coverage(coverage(parse_runbook(NODE), DECLARED))
    assert node[2] == (
        "P2: WebSocket Disconnections (#p2-websocket-disconnections): ws.connections_gauge, ws.handshake, ws.ping"
    )
    assert node[3].startswith("P3: Slow API Responses (#p3-slow-api-responses): api.latency, backend.health_memory")
    assert node[-1] == "every diagnosis section is covered"


def test_matching_section_follows_the_checks_closest_topic() -> None:
    fastapi, node = parse_runbook(FASTAPI), parse_runbook(NODE)

    def anchor(book: Runbook, check_id: str) -> str | None:
        found = matching_section(book, topics_for(check_id))
        return found.anchor if found else None

    assert anchor(fastapi, "db.reachable") == "database-connection-errors"
    assert anchor(node, "db.reachable") == "p1-service-outage"  # no database heading: the outage covers it
    assert anchor(fastapi, "frontend.spa_routes[/login]") == "frontend-404-errors"
    assert anchor(node, "frontend.spa_routes") is None
    assert anchor(node, "ws.ping") == "p2-websocket-disconnections"
    assert anchor(fastapi, "api.latency") is None
    assert anchor(fastapi, "team.own_check") is None
    assert topics_for("stack.services_running[backend]") == ("outage",)
    assert topics_for("team.own_check") == ()


def test_coverage_by_explicit_anchor_and_the_uncovered_listing() -> None:
    book = parse_runbook(FASTAPI)
    references: dict[str, str | None] = {
        "email.smtp_session": None,
        "team.queue": "docs/runbook.md#api-500-errors",
        "team.frontend[/a]": "#frontend-404-errors",
        "team.frontend[/b]": "frontend-404-errors",
        "team.unlinked": None,
        # An explicit anchor wins over the topic: this one covers the 500 section only.
        "email.configured": "api-500-errors",
    }
    checks = {check_id: (ref, topics_for(check_id)) for check_id, ref in references.items()}
    lines = format_coverage(coverage(book, checks))
    assert lines == [
        "Application Not Starting (#application-not-starting): NOT COVERED",
        "Database Connection Errors (#database-connection-errors): NOT COVERED",
        "Frontend 404 Errors (#frontend-404-errors): team.frontend",
        "API 500 Errors (#api-500-errors): email.configured, team.queue",
        "Authentication Failures (#authentication-failures): NOT COVERED",
        "Email Not Sending (#email-not-sending): email.smtp_session",
        "uncovered: Application Not Starting (#application-not-starting), "
        "Database Connection Errors (#database-connection-errors), Authentication Failures (#authentication-failures)",
    ]


def test_anchor_url_is_a_relative_link() -> None:
    assert anchor_url("docs/runbook.md", "database-connection-errors") == "docs/runbook.md#database-connection-errors"
    assert anchor_url(PurePosixPath("docs") / "runbook.md", "#a") == "docs/runbook.md#a"


# Odd runbooks


def test_odd_runbook_headings_anchors_and_fences() -> None:
    book = parse_runbook(ODD)
    assert [(s.level, s.anchor) for s in book.sections] == [
        (1, "queue-service-runbook"),
        (2, "severity"),
        (2, "incidents"),
        (3, "queue-backlog-workers"),
        (4, "diagnosis"),
        (4, "resolution"),
        (3, "queue-backlog-workers-1"),
        (3, "queue-backlog-workers-1-1"),
        (3, "disk-filling-up"),
        (3, "mail--smtp--not-sending-"),
        (3, "störung-im-netz"),
        (4, "diagnosis-1"),
        (2, "monitoring-dashboards"),
        (2, "escalation"),
    ]
    assert book.sections[0].title == "Queue Service Runbook"  # closing hashes dropped
    queue = book.section("queue-backlog-workers")
    assert queue.title == "Queue `backlog` (workers!)"
    assert [c.title for c in queue.children] == ["Diagnosis", "Resolution"]
    assert [c.anchor for c in book.section("incidents").children][-1] == "störung-im-netz"
    assert "# not a heading: inside a tilde fence" in queue.body
    assert "#hashtag is not a heading" in book.section("störung-im-netz").body


def test_odd_runbook_resolutions() -> None:
    book = parse_runbook(ODD)
    # A sub-heading: a fence inside a longer fence is kept verbatim.
    assert resolution(book.section("queue-backlog-workers")) == source_lines(ODD, 27, 32)
    # A label with its text on the same line, up to the next label.
    assert resolution(book.section("queue-backlog-workers-1")) == (
        "restart the worker: `docker compose restart worker`\n  then watch `redis-cli llen jobs` drain."
    )
    assert resolution(book.section("mail--smtp--not-sending-")) == "check the relay."
    # No resolution part: the whole section.
    disk = book.section("disk-filling-up")
    assert resolution(disk) == disk.body == source_lines(ODD, 47, 52)


def test_odd_runbook_severity_escalation_and_diagnoses() -> None:
    book = parse_runbook(ODD)
    assert severity_targets(book) == {"P1": "10 min", "P2": "2 hours"}
    assert escalation(book) == ["Page the on-call engineer", "P1 unresolved after 1 hour: call the team lead"]
    assert escalate_after(book) == "1 hour"
    assert [s.anchor for s in diagnosis_sections(book)] == [
        "queue-backlog-workers",
        "queue-backlog-workers-1",
        "queue-backlog-workers-1-1",
        "disk-filling-up",
        "mail--smtp--not-sending-",
        "störung-im-netz",
    ]
    lines = format_coverage(coverage(book, DECLARED))
    assert lines[-1].startswith("uncovered: Queue `backlog` (workers!) (#queue-backlog-workers), ")
    assert "Disk filling up (#disk-filling-up): " in lines[3] and "host.disk_free" in lines[3]


def test_line_numbers_count_crlf_and_form_feeds_as_editors_do(tmp_path: Path) -> None:
    path = tmp_path / "runbook.md"
    path.write_bytes(b"\xef\xbb\xbf# A\r\ntext \x0c more\r\n\r\n## B\r\n```\r\n")
    with pytest.raises(RunbookError, match=r"runbook.md:5: a ``` code block"):
        parse_runbook(path)
    path.write_bytes(b"\xef\xbb\xbf# A\r\ntext \x0c more\r\n\r\n## B\r\n")
    assert [(s.title, s.line) for s in parse_runbook(path).sections] == [("A", 1), ("B", 4)]


def test_nested_headings_make_a_tree(tmp_path: Path) -> None:
    book = parse_runbook(write(tmp_path, "## A\nintro\n### B\n#### C\nc\n### D\n## E\n# F\n###### G\n"))
    assert [s.anchor for s in book.roots] == ["a", "e", "f"]
    a = book.section("a")
    assert [c.anchor for c in a.children] == ["b", "d"]
    assert [c.anchor for c in book.section("b").children] == ["c"]
    assert (a.intro, a.body) == ("intro", "intro\n### B\n#### C\nc\n### D")
    assert [c.anchor for c in book.section("f").children] == ["g"]


@pytest.mark.parametrize(
    ("title", "anchor"),
    [
        ("P1: Service Outage", "p1-service-outage"),
        ("Queue `backlog` (workers!)", "queue-backlog-workers"),
        ("What's `SECRET_KEY`?", "whats-secret_key"),
        ("**Bold** and [a link](https://example.com)", "bold-and-a-link"),
        ("Frontend 404 / 500 errors", "frontend-404--500-errors"),
        ("snake_case and kebab-case", "snake_case-and-kebab-case"),
        ("Mail & SMTP — not sending? 🙁", "mail--smtp--not-sending-"),
        ("Latency < 2 s, <kbd>p95</kbd> > 1 s", "latency--2-s-p95--1-s"),
    ],
)
def test_github_anchors(title: str, anchor: str) -> None:
    assert slug(title) == anchor


def test_duplicate_headings_get_numbered_anchors(tmp_path: Path) -> None:
    book = parse_runbook(write(tmp_path, "# Runbook\n## Logs\n## Logs\n## Logs!\n## Logs-1\n"))
    assert book.anchors == ["runbook", "logs", "logs-1", "logs-2", "logs-1-1"]


def test_a_section_without_resolution_is_returned_whole(tmp_path: Path) -> None:
    text = "# R\n## Cache cold\n\nSymptoms: slow pages.\n\n```\nredis-cli info\n```\n---\n"
    book = parse_runbook(write(tmp_path, text))
    assert resolution(book.section("cache-cold")) == "Symptoms: slow pages.\n\n```\nredis-cli info\n```"


def test_plain_and_bold_resolution_labels(tmp_path: Path) -> None:
    text = "# R\n## Worker down\n**Diagnosis**: look.\nResolution:\n```sh\n**Not: a label**\nsystemctl restart w\n```\n"
    book = parse_runbook(write(tmp_path, text))
    assert resolution(book.section("worker-down")) == "```sh\n**Not: a label**\nsystemctl restart w\n```"


def test_unclosed_fence_names_the_file_and_the_line_it_opened(tmp_path: Path) -> None:
    path = write(tmp_path, "# A\n\n```bash\nls\n## not a heading\n")
    with pytest.raises(RunbookError) as caught:
        parse_runbook(path)
    assert str(caught.value) == f"{path}:3: a ``` code block opened here is never closed"
    # A fence with an info string does not close one; a shorter fence does not close a longer one.
    for text, line in [("# A\n```\n```bash\n", 2), ("# A\n````\n```\n", 2), ("# A\n~~~\n```\n~~~\n```x\n", 5)]:
        with pytest.raises(RunbookError, match=rf"runbook.md:{line}: a (```|````) code block opened here"):
            parse_runbook(write(tmp_path, text))


def test_no_heading_missing_file_and_unreadable_text(tmp_path: Path) -> None:
    for text in ("", "just prose\n#hashtag\n", "```\n# inside a fence\n```\n", "    # indented code\n"):
        with pytest.raises(RunbookError, match=r"runbook.md:1: no Markdown heading"):
            parse_runbook(write(tmp_path, text))
    missing = tmp_path / "docs" / "runbook.md"
    with pytest.raises(RunbookError) as caught:
        parse_runbook(missing)
    assert str(caught.value).startswith(f"{missing}: runbook not found")
    with pytest.raises(RunbookError, match="is a directory"):
        parse_runbook(tmp_path)
    binary = tmp_path / "binary.md"
    binary.write_bytes(b"# Title\n\nok\n\xff\xfe broken\n")
    with pytest.raises(RunbookError, match=r"binary.md:4: not UTF-8 text \(byte 0xff\)"):
        parse_runbook(binary)


def test_missing_anchor_names_it_and_suggests_the_nearest() -> None:
    book = parse_runbook(FASTAPI)
    with pytest.raises(RunbookError) as caught:
        book.section("database-conection-errors")
    message = str(caught.value)
    assert message.startswith(f"{FASTAPI}: no section #database-conection-errors (nearest: #database-connection-errors")
    assert "\n" not in message
    with pytest.raises(RunbookError, match=r"no section #zzz$"):
        book.section("#zzz")
