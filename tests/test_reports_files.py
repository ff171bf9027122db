"""JUnit XML read back with a real JUnit consumer's parser (junitparser), and the Prometheus file read back with
the official client library's text parser, from one incident sweep run as a user runs it."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from reports_incident import CONSEQUENCES, PLANTED, ROOTS, Sweep, run_sweep
from test_reports_contract import README, readme_table

junitparser = pytest.importorskip("junitparser", reason="pip install -e '.[test]' installs junitparser")
prometheus_parser = pytest.importorskip("prometheus_client.parser", reason="pip install -e '.[test]'")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    started = time.time()
    result = run_sweep(tmp_path_factory.mktemp("incident"))
    assert result.returncode == 1, result.stdout[-3000:]
    assert time.time() - started < 120
    return result


def properties(case: junitparser.TestCase) -> dict[str, str]:
    found = case.child(junitparser.Properties)
    return {p.name: p.value for p in found} if found is not None else {}


def test_junit_testcases_are_named_by_check_id_with_the_documented_properties(sweep: Sweep) -> None:
    xml = junitparser.JUnitXml.fromfile(str(sweep.path / "reports/junit.xml"))
    cases = {case.name: case for suite in xml for case in suite}
    records = {r["id"]: r for r in json.loads(sweep.read("reports/opscheck.json"))["checks"]}
    assert set(cases) == set(records), "one testcase per check, named by its id"
    documented = [row[0] for row in readme_table("junit-properties")]
    for check_id, case in cases.items():
        record = records[check_id]
        props = properties(case)
        assert list(props) == documented, check_id
        assert case.classname == f"opscheck.{record['severity']}"
        assert props["id"] == check_id and props["severity"] == record["severity"]
        assert props["outcome"] == record["outcome"]
        assert props["caused_by"] == (record["caused_by"] or "")
        assert props["below_fail_on"] == ("true" if record["severity"] in ("P3", "P4") else "false")
    assert properties(cases["incident.db_down"])["response_target"] == "respond immediately (within 15 min)"
    for consequence in CONSEQUENCES:
        assert properties(cases[consequence])["caused_by"] == "incident.db_down"


def test_junit_failure_is_the_cause_with_resolution_and_evidence(sweep: Sweep) -> None:
    xml = junitparser.JUnitXml.fromfile(str(sweep.path / "reports/junit.xml"))
    suite = next(iter(xml))
    cases = {case.name: case for case in suite}
    failed = {name for name, case in cases.items() if any(isinstance(r, junitparser.Failure) for r in case.result)}
    below = {"incident.slow_page"}  # P3 under --opscheck-fail-on P2: reported, and not a failure for CI
    assert failed == {*ROOTS, *CONSEQUENCES} - below
    assert (suite.failures, suite.errors) == (len(failed), 0), "a check failing in its fixture is a failure"
    down = next(r for r in cases["incident.db_down"].result if isinstance(r, junitparser.Failure))
    assert down.message == "db: connection refused by 127.0.0.1:5432"
    assert down.type == "opscheck.P1"
    assert down.text.startswith("P1 CRITICAL — respond immediately (within 15 min)\n")
    assert "Resolution:\ndocker compose restart db" in down.text
    assert "--- log tail ---\nFATAL: <script>alert(1)</script> password ***" in down.text
    queue = next(r for r in cases["incident.queue"].result if isinstance(r, junitparser.Failure))
    assert queue.message == "queue: connection refused by 127.0.0.1:5672"
    login = next(r for r in cases["incident.login"].result if isinstance(r, junitparser.Failure))
    assert "caused by incident.db_down: fix that first" in login.text
    assert "--- traceback ---" not in down.text, "a one-line cause is not repeated as a traceback"
    (slow,) = cases["incident.slow_page"].result
    assert isinstance(slow, junitparser.Skipped)
    assert (slow.type, slow.message) == ("opscheck.below_fail_on", "AssertionError: too slow")
    assert "Resolution:\nFind the slow query" in slow.text
    assert "--- traceback ---" in slow.text and "assert 2.5 < 2.0" in slow.text, "a check's own assertion keeps it"
    skipped = next(r for r in cases["incident.gap"].result if isinstance(r, junitparser.Skipped))
    assert skipped.message == "not configured: smtp.host"
    assert suite.skipped == sum(1 for c in cases.values() if any(isinstance(r, junitparser.Skipped) for r in c.result))
    text = sweep.read("reports/junit.xml")
    assert "traceback entries are hidden" not in text and "--full-trace" not in text
    assert PLANTED not in text


def test_prometheus_file_parses_with_the_client_library(sweep: Sweep) -> None:
    text = sweep.read("reports/opscheck.prom")
    families = {f.name: f for f in prometheus_parser.text_string_to_metric_families(text)}
    records = {r["id"]: r for r in json.loads(sweep.read("reports/opscheck.json"))["checks"]}
    up = {s.labels["id"]: (s.labels["severity"], s.value) for s in families["opscheck_check_up"].samples}
    ran = {i: r for i, r in records.items() if r["outcome"] != "skipped"}
    assert up == {i: (r["severity"], 1.0 if r["outcome"] == "passed" else 0.0) for i, r in ran.items()}
    assert up["incident.db_down"] == ("P1", 0.0) and up["incident.fine"] == ("P2", 1.0)
    assert "incident.gap" not in up, "a skipped check has no up sample: not configured is not down"
    durations = {s.labels["id"]: s.value for s in families["opscheck_check_duration_seconds"].samples}
    assert set(durations) == set(ran) and all(v >= 0 for v in durations.values())
    counts = {(s.labels["severity"], s.labels["outcome"]): s.value for s in families["opscheck_checks"].samples}
    assert counts[("P1", "failed")] == sum(r["severity"] == "P1" and r["outcome"] == "failed" for r in records.values())
    assert sum(counts.values()) == len(records)
    (stamp,) = families["opscheck_last_sweep_timestamp_seconds"].samples
    assert abs(time.time() - stamp.value) < 300
    assert all(f.type == "gauge" for f in families.values())
    # The metric names the README documents and its alert rules use are the ones written.
    documented = {row[0] for row in readme_table("prometheus-metrics")}
    assert documented == set(families)
    rules = README.read_text().split("groups:\n", 1)[1].split("```", 1)[0]
    assert set(re.findall(r"\bopscheck_[a-z_]+", rules)) <= documented
    assert PLANTED not in text


def test_prometheus_label_values_are_escaped(tmp_path: Path) -> None:
    from pytest_opscheck.model import CheckRecord, summarize
    from pytest_opscheck.report.prometheus import render_metrics

    odd = 'web.route[/a"b\\c\nd]'
    summary = summarize([CheckRecord(odd, "n", "P2", "failed", 0.5, "x", "")])
    families = list(prometheus_parser.text_string_to_metric_families(render_metrics(summary, 1.0, 2.0)))
    (sample,) = next(f for f in families if f.name == "opscheck_check_up").samples
    assert sample.labels == {"id": odd, "severity": "P2"} and sample.value == 0.0
