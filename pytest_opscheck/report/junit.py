"""JUnit XML for CI systems, written by pytest's own junitxml plugin (``--junitxml``) and shaped here.

Each check's teardown report carries its id and node id as ``user_properties`` (what junitxml turns into
``<properties>``); once junitxml has written the file, each of those testcases is named by its check id
(classname ``opscheck.P1``..``opscheck.P4``), gets the summary's properties (severity, response target,
caused_by, whether it is below ``--opscheck-fail-on``), and a failed check's ``<failure>`` becomes its one-line
cause as the message and its resolution and evidence (redacted) as the body. Root causes are known only when
the session ends, which is why the file is shaped then and not as each check reports.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ..context import SweepContext
from ..model import KEY, LABELS, CheckRecord, Severity, Summary
from .paths import write_report

ID, NODEID = "opscheck.id", "opscheck.nodeid"  # the link from a testcase to its record, replaced when shaped
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 cannot carry."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def properties_of(record: CheckRecord, summary: Summary, fail_on: Severity) -> list[tuple[str, str]]:
    """The properties of a check's testcase, in this order (README: Reports)."""
    return [
        ("id", record.check_id),
        ("severity", record.severity),
        ("response_target", summary.targets[record.level]),
        ("caused_by", record.caused_by or ""),
        ("below_fail_on", "true" if record.level > fail_on else "false"),
        ("outcome", record.outcome),
    ]


def failure_body(record: CheckRecord, summary: Summary) -> str:
    """A failed check's body: severity and target, its root, the resolution steps, then the evidence."""
    lines = [f"{record.severity} {LABELS[record.level]} — {summary.targets[record.level]}"]
    if record.caused_by:
        lines.append(f"caused by {record.caused_by}: fix that first")
    if record.resolution.strip():
        lines += ["", "Resolution:", record.resolution.strip()]
    for title, text in record.evidence.items():
        lines += ["", f"--- {title} ---", text.rstrip()]
    return "\n".join(lines) + "\n"


def _traceback(text: str, message: str) -> str:
    """pytest's own account of a failure, kept when it says more than the one-line cause (an assertion in a
    check's own code, with its source); a cause alone, or pytest's note that it hid every frame, is dropped."""
    text = text.strip()
    if not text or text == message.strip() or "\n" not in text or "traceback entries are hidden" in text:
        return ""
    return f"\n--- traceback ---\n{text}\n"


def shape(root: ET.Element, summary: Summary, fail_on: Severity, prefix: str | None) -> int:
    """Shape every check's testcase of junitxml's tree in place; the number of testcases shaped."""
    records = {r.nodeid: r for r in [*summary.failed, *summary.passed_records, *summary.skipped]}
    shaped = 0
    for suite in root.iter("testsuite"):
        for case in suite.findall("testcase"):
            props = case.find("properties")
            if props is None:
                continue
            own = {p.get("name"): p.get("value") for p in props.findall("property")}
            record = records.get(own.get(NODEID) or "")
            if record is None:
                continue
            shaped += 1
            case.set("name", _xml_text(record.check_id))
            case.set("classname", f"{prefix}.opscheck.{record.severity}" if prefix else f"opscheck.{record.severity}")
            others = [p for p in props.findall("property") if p.get("name") not in (ID, NODEID)]
            for p in list(props):
                props.remove(p)
            for name, value in properties_of(record, summary, fail_on):
                ET.SubElement(props, "property", name=name, value=_xml_text(value))
            props.extend(others)
            if record.outcome == "failed":
                trace = ""
                for node in case.findall("failure") + case.findall("error"):
                    if not (node.get("message") or "").startswith("failed on teardown"):
                        trace = trace or _traceback(node.text or "", record.message)
                        case.remove(node)
                failure = ET.Element("failure", message=_xml_text(record.message), type=f"opscheck.{record.severity}")
                failure.text = _xml_text(failure_body(record, summary) + trace)
                case.insert(list(case).index(props) + 1, failure)
        suite.set("failures", str(len(suite.findall("testcase/failure"))))
        suite.set("errors", str(len(suite.findall("testcase/error"))))
    return shaped


class JunitReport:
    """Carries each check's link on its report, then shapes the file junitxml wrote (controller only)."""

    def __init__(self, ctx: SweepContext, xmlpath: str) -> None:
        self.ctx = ctx
        # Where junitxml writes it, resolved as junitxml resolves it.
        self.path = Path(os.path.normpath(os.path.abspath(os.path.expanduser(os.path.expandvars(xmlpath)))))
        self.checks: dict[str, str] = {}  # node id -> check id, from the setup or call report

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, KEY, None)
        if data:
            self.checks[report.nodeid] = str(data["check_id"])
        elif report.when == "teardown" and report.nodeid in self.checks:
            # junitxml reads the teardown report's user_properties into the testcase's <properties>.
            report.user_properties.append((ID, self.checks[report.nodeid]))
            report.user_properties.append((NODEID, report.nodeid))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        summary = self.ctx.summary
        if summary is None or not self.path.is_file():
            return
        try:
            tree = ET.parse(self.path)
        except (OSError, ET.ParseError):
            return  # junitxml's own failure is pytest's to report
        shape(tree.getroot(), summary, self.ctx.fail_on, session.config.getoption("junitprefix", None))
        text = '<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(tree.getroot(), encoding="unicode")
        write_report(session.config, "--junitxml", self.path, text)
