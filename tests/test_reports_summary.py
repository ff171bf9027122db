"""The file reporters as implementations of `pytest_opscheck_summary`, each writing through the one Sink: what
changed since the last green sweep in the JSON, the HTML's first screen and the post-mortem's timeline; deploys
read as typed facts; every text bounded and redacted once more at the sink, whatever its shape; and only
pytest-html's documented surface used."""

from __future__ import annotations

import ast
import html
import inspect
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import pytest

from pytest_opscheck.model import Change, CheckRecord, Deploy, Severity, SkipKind, Skipped, Summary, summarize
from pytest_opscheck.redact import Redactor
from pytest_opscheck.report import files, html_summary, junit, postmortem, prometheus
from pytest_opscheck.report.clean import EVIDENCE_LIMIT, MESSAGE_LIMIT

REPORT = Path(files.__file__).parent
STARTED = datetime(2024, 5, 1, 10, 0, 0)
NOW = STARTED + timedelta(minutes=5)


def utc(moment: datetime) -> str:
    """`moment` (naive local time, as the draft's clock) as the ISO 8601 UTC text the model carries."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def record(check_id: str, severity: str, outcome: str, message: str = "", **extra: object) -> CheckRecord:
    return CheckRecord(check_id, f"ops/test_x.py::test_{check_id}", severity, outcome, 0.25, message, "restart it",
                       **extra)  # type: ignore[arg-type]


CHANGES = (  # newest first, as the summary has them
    Change("backend image", "app:1.4 (sha256:aaa)", "app:1.5 (sha256:bbb)", utc(STARTED - timedelta(minutes=20))),
    Change("backend env SECRET_KEY", "hash 1f2e", "hash 9c8d", utc(STARTED - timedelta(minutes=40))),
    Change("db migration head", "0042", None, None),
)
DEPLOYS = (  # names and images of every shape: ports, digests, spaces where a regex would split
    Deploy("backend", "app-backend-1", "registry.local:5000/team/app:1.5", utc(STARTED - timedelta(minutes=21))),
    Deploy("db", "app db 1", "postgres@sha256:0123456789ab", utc(STARTED - timedelta(days=3))),
    Deploy("worker", "app-worker-1", "app:1.5", utc(STARTED + timedelta(minutes=2))),  # after the sweep began
)


def incident(**extra: Any) -> Summary:
    records = [
        record("stack.services_running", "P1", "failed", "backend: exited (1)", deploys=DEPLOYS),
        record("backend.health", "P1", "failed", "backend: connection refused", caused_by="stack.services_running"),
        record("db.reachable", "P1", "passed"),
        record("email.configured", "P3", "skipped", "not configured: smtp",
               skipped=Skipped(SkipKind.NOT_CONFIGURED, "smtp")),
    ]
    return summarize(records, fix_first=("stack.services_running",), **extra)


def test_the_json_says_what_changed_since_the_last_green_sweep(pytestconfig: pytest.Config, tmp_path: Path) -> None:
    summary = incident(last_green=utc(STARTED - timedelta(hours=1)), changes=CHANGES)
    sink = files.Sink(pytestconfig, Redactor())
    files.JsonReport(sink, str(tmp_path / "out.json")).pytest_opscheck_summary(summary, pytestconfig)
    data = json.loads((tmp_path / "out.json").read_text())
    assert list(data) == ["verdict", "last_green", "changes", "checks"]
    assert data["last_green"] == utc(STARTED - timedelta(hours=1))
    assert data["changes"] == [{"what": c.what, "before": c.before, "after": c.after, "at": c.at} for c in CHANGES]
    green = json.loads(json.dumps(files.json_payload(incident())))
    assert (green["last_green"], green["changes"]) == (None, [])


def test_the_first_screen_shows_the_changes_newest_first() -> None:
    page = html_summary.summary_html(incident(last_green="2024-05-01T08:00:00+00:00", changes=CHANGES), [])
    table = page[page.index('id="opscheck-changes"') :]
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", table)
    assert [html.unescape(r[0]) for r in rows] == [c.what for c in CHANGES]
    assert rows[2][2] == "(gone)" and rows[2][3] == ""
    assert "Changes since the last green sweep (2024-05-01T08:00:00+00:00)" in page
    assert page.index('id="opscheck-failures"') < page.index('id="opscheck-changes"')
    assert "opscheck-changes" not in html_summary.summary_html(incident(), [])
    same = html_summary.summary_html(incident(last_green="2024-05-01T08:00:00+00:00"), [])
    assert "No change in the stack since the last green sweep (2024-05-01T08:00:00+00:00)" in same


def test_the_postmortem_timeline_starts_from_typed_deploys_and_changes() -> None:
    summary = incident(last_green=utc(STARTED - timedelta(hours=1)), changes=CHANGES)
    text = postmortem.render_postmortem(
        summary.records, STARTED, NOW, {}, None, Redactor(), changes=summary.changes, last_green=summary.last_green,
    )
    timeline = text.split("### Timeline\n", 1)[1].split("- HH:MM", 1)[0].splitlines()
    assert timeline == [
        "- 10:00:00 (2024-04-28) - app db 1 created from postgres@sha256:0123456789ab",
        "- 09:00:00 - last green sweep (verdict OK)",
        "- 09:20:00 - changed since the last green sweep: backend env SECRET_KEY: hash 1f2e → hash 9c8d",
        "- 09:39:00 - app-backend-1 created from registry.local:5000/team/app:1.5",
        "- 09:40:00 - changed since the last green sweep: backend image: app:1.4 (sha256:aaa) → app:1.5 (sha256:bbb)",
        "- time unknown - changed since the last green sweep: db migration head: 0042 → (gone)",
        "- 10:00:00 - opscheck sweep started",
        "- 10:05:00 - Incident detected",
        "- 10:05:00 - backend.health failed: backend: connection refused",
        "- 10:05:00 - stack.services_running failed: backend: exited (1)",
    ]
    assert "app-worker-1" not in text, "a container created after the sweep began is not what the failure met"


SECRETS = [  # shapes a secret learnt late in the sweep comes in: escapes, markup, quotes, unicode, URL text
    "late-Secret-0001",
    'q"uote<tag>&amp;\\back-0002',
    "ünïcødé-sécret-0003",
    "spaces in it 0004/+=",
]


@pytest.mark.parametrize("secret", SECRETS)
def test_every_file_redacts_again_at_the_sink_and_bounds_what_came_from_targets(
    pytestconfig: pytest.Config, tmp_path: Path, secret: str
) -> None:
    """Records sealed before the secret was known (a token the login obtained later): every file masks it, in
    every form its format would write it, and cuts what a target sent to the reports' bounds."""
    huge = "x" * (EVIDENCE_LIMIT + 500)
    records = [
        record("auth.login", "P2", "failed", f"login refused for {secret}\x1b[31m",
               evidence={f"answer {secret}": f"token={secret} {huge}"}),
        record("auth.token", "P3", "failed", "x" * (MESSAGE_LIMIT + 50), caused_by="auth.login"),
    ]
    summary = summarize(records, changes=(Change(f"backend env {secret}", secret, "b", None),))
    sink = files.Sink(pytestconfig, Redactor([secret]))
    ctx = _Ctx()
    paths = {name: tmp_path / name for name in ("out.json", "junit.xml", "out.prom", "pm.md")}
    for reporter in (
        files.JsonReport(sink, str(paths["out.json"])),
        junit.JunitReport(ctx, sink, str(paths["junit.xml"])),  # type: ignore[arg-type]
        prometheus.PrometheusReport(ctx, sink, str(paths["out.prom"])),  # type: ignore[arg-type]
        files.PostmortemReport(ctx, sink, str(paths["pm.md"])),  # type: ignore[arg-type]
    ):
        reporter.pytest_opscheck_summary(summary, pytestconfig)
    page = html_summary.summary_html(sink.summary(summary), [])
    page += html_summary.extras_html(sink.record(records[0]), summary.targets)
    outputs = {name: path.read_text() for name, path in paths.items()} | {"html": page}
    xml_text = secret.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    forms = {secret, html.escape(secret), json.dumps(secret)[1:-1], quote(secret), xml_text}
    for name, text in outputs.items():
        for form in forms:
            assert form not in text, (name, form)
        assert "\x1b" not in text, name
    data = json.loads(outputs["out.json"])
    login = next(c for c in data["checks"] if c["id"] == "auth.login")
    (value,) = login["evidence"].values()
    assert len(value) < EVIDENCE_LIMIT + 100 and "[truncated: " in value
    token = next(c for c in data["checks"] if c["id"] == "auth.token")
    assert len(token["message"]) < MESSAGE_LIMIT + 100


class _Ctx:
    """What the reporters read of the sweep context besides the summary."""

    started = STARTED
    first_failures: ClassVar[dict[str, datetime]] = {}
    fail_on = Severity.P2
    redact = Redactor()

    class runbooks:
        configured = None


def test_the_html_report_uses_only_pytest_htmls_documented_hooks_and_extras() -> None:
    """Every `pytest_html_*` method is a hook pytest-html publishes; nothing of pytest-html but its `extras`
    module is imported; no report module reads junitxml's file or pytest's internals."""
    from pytest_html import hooks

    published = {name for name, _ in inspect.getmembers(hooks, inspect.isfunction)}
    for path in sorted(REPORT.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("pytest_html_"):
                assert node.name in published, (path.name, node.name)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pytest_html"):
                assert (node.module, [a.name for a in node.names]) == ("pytest_html", ["extras"]), path.name
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(n.startswith("_pytest") for n in names), path.name
            if isinstance(node, ast.Attribute):
                assert node.attr not in {"outcomes", "initialSort", "_report", "parse"}, (path.name, node.attr)


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        ((), ""),
        ((SkipKind.NOT_CONFIGURED,), " (1 not configured)"),
        ((SkipKind.UNSET_VARIABLE, SkipKind.UNSET_VARIABLE), " (2 not run: variable unset)"),
        ((SkipKind.DISABLED, SkipKind.NOT_CONFIGURED, SkipKind.OTHER), " (1 not configured, 1 disabled)"),
    ],
)
def test_the_banner_counts_what_the_gate_did_not_check_from_typed_skips(
    kinds: tuple[SkipKind, ...], expected: str
) -> None:
    """Read from `record.skipped.kind`, never from the message: a skip whose text merely says "not configured"
    is not counted as one."""
    records = [record("db.reachable", "P1", "passed")]
    records += [
        record(f"x.check{i}", "P2", "skipped", "not configured: (a check's own words)", skipped=Skipped(kind, "k", "V"))
        for i, kind in enumerate(kinds)
    ]
    line = html_summary.counts_line(summarize(records), 1.0, Severity.P4)
    assert line.startswith(f"{len(records)} checks: 0 failed, 1 passed, {len(kinds)} skipped{expected} · ")
