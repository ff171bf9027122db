"""The sweep's hooks: each check's metadata at collection, its record at run time, the summary and the gate."""

from __future__ import annotations

import gc
import json
from collections.abc import Generator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from .config import Settings
from .probes.result import TargetUnreachable
from .report.clean import EVIDENCE_LIMIT, MESSAGE_LIMIT, clean
from .report.html import HtmlReport, record_of
from .report.postmortem import render_postmortem
from .report.record import CheckRecord, Summary, summarize
from .report.terminal import summary_lines
from .runbook import RunbookError
from .session import META, OBSERVED, REDACTOR, RUNBOOKS, TARGETS
from .severity import RESPONSE_TARGETS, CheckMeta, MarkerError, Severity, evaluate
from .targets import root_cause
from .verdict import CheckFailed, observing


class Sweep:
    """Hooks of one sweep: metadata at collection, records at run time, summary and gate at the end."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.redact = config.stash[REDACTOR]
        self.records: dict[str, CheckRecord] = {}
        self.fail_on = Severity[config.getoption("opscheck_fail_on") or "P4"]
        self.is_worker = hasattr(config, "workerinput")
        runbooks = config.stash[RUNBOOKS]
        self.targets: dict[Severity, str] = runbooks.targets(RESPONSE_TARGETS)
        self.escalation = runbooks.escalation()
        self.coverage: list[str] = []
        self.started = datetime.now()
        self.first_failures: dict[str, datetime] = {}
        if config.pluginmanager.hasplugin("html") and not self.is_worker:
            config.pluginmanager.register(HtmlReport(self.summary, self.targets), "opscheck-html")

    def crashed(self, item: pytest.Item) -> str | None:
        """Why waiting cannot help `item`: a container of its service exited or is restarting."""
        targets = self.config.stash[TARGETS]
        if targets.missing("stack") is not None:
            return None
        try:
            crashed: dict[str, str] = targets.get("stack").crashed_services()
        except TargetUnreachable:  # no engine: nothing tells a crash, keep waiting
            return None
        meta = item.stash.get(META, None)
        service = self._service_of(meta)
        if service is not None:
            return f"service {service} {crashed[service]}" if service in crashed else None
        if meta is not None and meta.check_id.split(".")[0] in ("stack", "host"):
            return next((f"service {name} {state}" for name, state in sorted(crashed.items())), None)
        return None

    def _service_of(self, meta: CheckMeta | None) -> str | None:
        """The Compose service whose container a check probes; None for the stack's own and other checks."""
        if meta is None:
            return None
        if meta.check_id == "stack.backend_reaches_db":
            return self.settings.backend_service
        return {
            "db": self.settings.db_service,
            "backend": self.settings.backend_service,
            "api": self.settings.backend_service,
            "auth": self.settings.backend_service,
            "ws": self.settings.backend_service,
            "frontend": "frontend",
        }.get(meta.check_id.split(".")[0])

    def summary(self) -> Summary:
        return summarize(self.records.values(), self.targets, self.escalation, tuple(self.coverage))

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        s = self.settings
        env = f" [env {s.env_name}]" if s.env_name else ""
        targets = [
            f"{name} {self.redact(value)}"
            for name, value in (
                ("compose", s.compose_project or s.compose_file),
                ("backend", s.backend_url),
                ("frontend", s.frontend_url),
                ("db", s.database_url),
                ("ws", s.websocket_url),
                ("smtp", s.smtp.host if s.smtp else None),
            )
            if value
        ]
        return [
            f"opscheck: config {s.source}{env}, timeout {s.timeout:g}s, fail on {self.fail_on.name} and above",
            "opscheck targets: " + (", ".join(targets) or "none configured"),
        ]

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        config.stash[TARGETS].close()

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, Any, Any]:
        report = yield
        if not isinstance(collector, pytest.Module | pytest.Class) or report.outcome != "passed":
            return report
        problems = []
        for item in report.result:
            if not isinstance(item, pytest.Function):
                continue
            try:
                meta = evaluate(item.path, item.name, item.get_closest_marker, item.function.__doc__)
                item.stash[META] = self.config.stash[RUNBOOKS].link(meta)
            except (MarkerError, RunbookError) as exc:
                problems.append(f"{item.nodeid}: {exc}")
        if problems:
            report.outcome = "failed"
            report.longrepr = "\n".join(problems)
            report.result = []
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self) -> None:
        # Everything long-lived is imported by now: keep it out of the collector's work, so pytest's forced
        # collections at the end of the session (about 0.4 s on a heap this size) scan only the sweep's garbage.
        gc.freeze()

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            meta = item.stash.get(META, None)
            if meta is None:
                continue
            item.add_marker(meta.severity.name.lower())
            item.extra_keyword_matches.add(meta.check_id)
        # Worst first: at 3 a.m. the P1 checks report before anything else.
        items.sort(key=lambda i: i.stash[META].severity if META in i.stash else Severity.P4)
        if self.config.getoption("opscheck_coverage"):
            metas = [i.stash[META] for i in items if META in i.stash]
            anchors = {m.check_id: m.runbook.partition("#")[2] if m.runbook else None for m in metas}
            self.coverage = self.config.stash[RUNBOOKS].coverage_lines(anchors)
            self.config.hook.pytest_deselected(items=items[:])
            items[:] = []

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if META in item.stash:
            item.stash[OBSERVED] = observing()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        if call.excinfo is not None and isinstance(call.excinfo.value, CheckFailed):
            # Shown as its cause alone: pytest need not walk (and filter) the fixtures' frames of its traceback,
            # which costs ~5 ms per failure, most of a dead stack's sweep once its targets have timed out.
            call.excinfo.traceback = call.excinfo.traceback[-1:]
        report: pytest.TestReport = yield
        self._redact_report(report)
        meta = item.stash.get(META, None)
        if meta is None:
            return report
        failure = call.excinfo.value if call.excinfo is not None else None
        if report.when == "setup" and report.failed and isinstance(failure, CheckFailed):
            # A fixture whose target is down fails the check itself, not the test machinery.
            report.when = "call"
            report.longrepr = self.redact(failure.cause)
        if report.when == "call" or (report.when == "setup" and not report.passed):
            record = self._record(report, meta, call, item.stash.get(OBSERVED, {}))
            if record.outcome == "failed" and self._service_crashed(item):
                record = replace(record, caused_by="stack.no_crash_loop")
            report.opscheck = record.to_dict()  # type: ignore[attr-defined]
        return report

    def _service_crashed(self, item: pytest.Item) -> bool:
        """The service behind `item`'s target crashed (exited non-zero or restarting): that is the root cause."""
        return self._service_of(item.stash[META]) is not None and self.crashed(item) is not None

    def _redact_report(self, report: pytest.TestReport) -> None:
        """Redact the failure text and captured output; keep pytest's rich repr when nothing changed."""
        longrepr = report.longrepr
        if isinstance(longrepr, tuple):
            report.longrepr = (longrepr[0], longrepr[1], self.redact(longrepr[2]))
        elif longrepr is not None:
            text = str(longrepr)
            redacted = self.redact(text)
            if redacted != text:
                report.longrepr = redacted
        report.sections = [(title, self.redact(body)) for title, body in report.sections]

    def _record(
        self, report: pytest.TestReport, meta: CheckMeta, call: pytest.CallInfo[None], observed: dict[str, str]
    ) -> CheckRecord:
        """The check's record; a passed check keeps the evidence its probes gathered."""
        evidence: dict[str, str] = dict(observed) if report.passed else {}
        caused_by = None
        if report.skipped:
            message = report.longrepr[2].removeprefix("Skipped: ") if isinstance(report.longrepr, tuple) else ""
        elif report.failed:
            exc = call.excinfo.value if call.excinfo else None
            if isinstance(exc, CheckFailed):
                message, evidence = exc.cause, exc.evidence
                caused_by = root_cause(meta.check_id, exc.target)
            else:
                message = _first_line(call.excinfo.exconly() if call.excinfo else str(report.longrepr))
        else:
            message = ""
        return CheckRecord(
            check_id=meta.check_id,
            nodeid=report.nodeid,
            severity=meta.severity.name,
            outcome=report.outcome,
            duration=round(report.duration, 4),
            message=clean(self.redact(message), MESSAGE_LIMIT),
            resolution=self.redact(meta.resolution),
            evidence={clean(self.redact(k), 200): clean(self.redact(v), EVIDENCE_LIMIT) for k, v in evidence.items()},
            caused_by=caused_by,
        )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = record_of(report)
        if record is not None:
            self.records[record.nodeid] = record
            if record.outcome == "failed":
                self.first_failures.setdefault(record.nodeid, datetime.now())

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.coverage:
            terminalreporter.section("opscheck runbook coverage")
            for line in self.coverage:
                terminalreporter.line(line)
        if not self.records:
            return
        terminalreporter.section("opscheck")
        for line in summary_lines(self.summary()):
            terminalreporter.line(line)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            return
        path = self.config.getoption("opscheck_json")
        if path:
            records = sorted(self.records.values(), key=lambda r: (r.level, r.check_id))
            payload = {"verdict": self.summary().verdict, "checks": [r.to_dict() for r in records]}
            Path(path).write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
        postmortem = self.config.getoption("opscheck_postmortem")
        if postmortem:
            text = render_postmortem(
                list(self.records.values()), self.started, datetime.now(), self.first_failures,
                self.config.stash[RUNBOOKS].configured, self.redact,
            )
            Path(postmortem).write_text(text, encoding="utf-8")
        if self.coverage and exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            session.exitstatus = pytest.ExitCode.OK
        if exitstatus == pytest.ExitCode.TESTS_FAILED and self._only_below_threshold(session):
            session.exitstatus = pytest.ExitCode.OK

    def _only_below_threshold(self, session: pytest.Session) -> bool:
        """True when every failure is a check below ``--opscheck-fail-on``."""
        failed = [r for r in self.records.values() if r.outcome == "failed"]
        if session.testsfailed != len(failed):
            return False  # some failure is not a check's own (an error in a fixture or a teardown)
        return all(r.level > self.fail_on for r in failed)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text)
