"""JUnit XML for CI systems (``--junitxml PATH`` under ``--opscheck``), written by the product from the sweep's
final summary, so that CI reporters agree with the exit status.

pytest's junitxml writes each test as pytest saw it, as it finished: it cannot name a testcase by its check id,
cannot write a failure below ``--opscheck-fail-on`` as skipped (SPEC.md: ``type="opscheck.below_fail_on"``, the
cause as message), and knows no root cause (``caused_by`` is known only when the session ends). So under
``--opscheck`` the option is served here (`files.take_over_junitxml`) and junitxml writes nothing. What a check
or a team's plugin records with ``record_property`` (``report.user_properties``, as junitxml documents it) is
kept, after the product's own properties.

Each check is one testcase: classname ``opscheck.P1``..``opscheck.P4`` (behind ``--junit-prefix``), name its
check id, its properties (README: Reports), and a ``<failure>`` (at or above the threshold) or ``<skipped>``
(below it, or not run) whose message is the one-line cause and whose text is the severity and its response
target, the root cause, the resolution steps and the evidence.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..context import SweepContext
from ..model import LABELS, CheckRecord, Severity, Summary, record_of

if TYPE_CHECKING:
    from .files import Sink

BELOW_FAIL_ON = "opscheck.below_fail_on"
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
    """A failed check's text: severity and target, its root, the resolution steps, then the evidence."""
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


def testcase(
    record: CheckRecord, summary: Summary, fail_on: Severity, prefix: str | None,
    user_properties: list[tuple[str, str]], traceback: str, teardown: str = "",
) -> ET.Element:
    """One check's testcase."""
    classname = f"opscheck.{record.severity}"
    case = ET.Element(
        "testcase", classname=f"{prefix}.{classname}" if prefix else classname, name=_xml_text(record.check_id),
        time=f"{record.duration:.3f}",
    )
    props = ET.SubElement(case, "properties")
    for name, value in [*properties_of(record, summary, fail_on), *user_properties]:
        ET.SubElement(props, "property", name=_xml_text(str(name)), value=_xml_text(str(value)))
    if record.outcome == "failed":
        below = record.level > fail_on
        node = ET.SubElement(
            case, "skipped" if below else "failure", message=_xml_text(record.message),
            type=BELOW_FAIL_ON if below else f"opscheck.{record.severity}",
        )
        node.text = _xml_text(failure_body(record, summary) + _traceback(traceback, record.message))
    elif record.outcome == "skipped":
        ET.SubElement(case, "skipped", type="pytest.skip", message=_xml_text(record.message))
    if teardown:  # the check's own fixture broke after it: pytest counts an error, so does the file
        ET.SubElement(case, "error", message="failed on teardown").text = _xml_text(teardown)
    return case


def render_junit(
    summary: Summary, fail_on: Severity, *, suite: str = "pytest", prefix: str | None = None,
    user_properties: dict[str, list[tuple[str, str]]] | None = None, tracebacks: dict[str, str] | None = None,
    teardowns: dict[str, str] | None = None, errors: Sequence[tuple[str, str]] = (),
    timestamp: datetime | None = None, seconds: float = 0.0,
) -> str:
    """The JUnit file of a sweep: one testsuite, a testcase per check (worst first, then by id; a failed
    teardown as an error in it), then the collection errors (a checks file that could not be imported)."""
    user_properties, tracebacks, teardowns = user_properties or {}, tracebacks or {}, teardowns or {}
    cases = [
        testcase(r, summary, fail_on, prefix, user_properties.get(r.nodeid, []), tracebacks.get(r.nodeid, ""),
                 teardowns.get(r.nodeid, ""))
        for r in sorted(summary.records, key=lambda r: (r.level, r.check_id))
    ]
    for nodeid, text in errors:
        case = ET.Element("testcase", classname="opscheck.collection", name=_xml_text(nodeid), time="0.000")
        ET.SubElement(case, "error", message="collection failure").text = _xml_text(text)
        cases.append(case)
    root = ET.Element("testsuites")
    attributes = {
        "name": suite,
        "errors": str(sum(1 for c in cases if c.find("error") is not None)),
        "failures": str(sum(1 for c in cases if c.find("failure") is not None)),
        "skipped": str(sum(1 for c in cases if c.find("skipped") is not None)),
        "tests": str(len(cases)),
        "time": f"{seconds:.3f}",
        "timestamp": (timestamp or datetime.now()).astimezone().isoformat(timespec="seconds"),
        "hostname": platform.node(),
    }
    ET.SubElement(root, "testsuite", attributes).extend(cases)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


class JunitReport:
    """Keeps what the summary does not carry (each check's ``user_properties`` and pytest's account of its
    failure, from the reports; collection errors), then writes the file from the final summary."""

    def __init__(self, ctx: SweepContext, sink: Sink, xmlpath: str) -> None:
        self.ctx = ctx
        self.sink = sink
        self.shown = xmlpath
        # Where junitxml would have written it, resolved as junitxml resolves it.
        self.path = Path(os.path.normpath(os.path.abspath(os.path.expanduser(os.path.expandvars(xmlpath)))))
        self.user_properties: dict[str, list[tuple[str, str]]] = {}
        self.tracebacks: dict[str, str] = {}
        self.teardowns: dict[str, str] = {}
        self.errors: list[tuple[str, str]] = []
        self.written = False

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.user_properties:
            # Each report carries every property recorded so far; the last one has them all.
            self.user_properties[report.nodeid] = [(str(k), str(v)) for k, v in report.user_properties]
        if report.failed and record_of(report) is not None:
            self.tracebacks.setdefault(report.nodeid, report.longreprtext)
        elif report.failed and report.when == "teardown":
            self.teardowns[report.nodeid] = report.longreprtext

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.errors.append((report.nodeid, report.longreprtext))

    def pytest_opscheck_summary(self, summary: Summary, config: pytest.Config) -> None:
        sink = self.sink
        text = render_junit(
            sink.summary(summary), self.ctx.fail_on,
            suite=str(config.getini("junit_suite_name") or "pytest"),
            prefix=config.getoption("junitprefix", None),
            user_properties={n: [(sink.text(k, 200), sink.text(v)) for k, v in p]
                             for n, p in self.user_properties.items()},
            tracebacks={n: sink.text(t) for n, t in self.tracebacks.items()},
            teardowns={n: sink.text(t) for n, t in self.teardowns.items()},
            errors=[(n, sink.text(t)) for n, t in self.errors],
            timestamp=self.ctx.started,
            seconds=(datetime.now() - self.ctx.started).total_seconds(),
        )
        with contextlib.suppress(OSError):  # the write below says why
            self.path.parent.mkdir(parents=True, exist_ok=True)  # as junitxml does
        self.written = sink.write("--junitxml", self.path, text)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.written:
            terminalreporter.write_sep("-", f"generated xml file: {self.path}")
