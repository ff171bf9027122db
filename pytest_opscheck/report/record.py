"""One plain record per check, carried on the test report, and the summary all reporters share.

The record is built once (on the worker that ran the check), redacted there, and travels as a plain
dict on ``report.opscheck`` (what xdist can serialise). Reporters read the records the sweep kept, with
their root causes attributed (`causes.py`), through `Summary`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..severity import LABELS, RESPONSE_TARGETS, Severity

NOT_CONFIGURED = "not configured"
KEY = "opscheck"  # the record's attribute on a test report (a plain dict, as xdist carries it)
# The fields of a record in the JSON file (SPEC.md), in this order.
PUBLIC_FIELDS = (
    "id", "nodeid", "severity", "outcome", "duration", "message", "resolution", "evidence", "caused_by",
    "attempts", "ready_after",
)


def base_id(check_id: str) -> str:
    """The check id without its parameters: `frontend.spa_routes[/login]` is `frontend.spa_routes`."""
    return check_id.partition("[")[0]


@dataclass(frozen=True)
class CheckRecord:
    """A check's result as every report shows it, and what root-cause attribution reads."""

    check_id: str
    nodeid: str
    severity: str
    outcome: str  # passed, failed, skipped
    duration: float
    message: str
    resolution: str
    evidence: dict[str, str] = field(default_factory=dict)
    caused_by: str | None = None
    attempts: int = 1
    ready_after: float | None = None
    # What the check declared: its runbook topics, the checks it depends on (closest first), its Compose service.
    topics: tuple[str, ...] = ()
    depends: tuple[str, ...] = ()
    service: str | None = None
    # The target it could not reach, when that is why it failed.
    target: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> CheckRecord:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in ("topics", "depends"):
            values[name] = tuple(values.get(name, ()))  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]

    def public(self) -> dict[str, object]:
        """The record as the JSON file has it (SPEC.md)."""
        data = asdict(self)
        data["id"] = data.pop("check_id")
        return {name: data[name] for name in PUBLIC_FIELDS}

    @property
    def level(self) -> Severity:
        return Severity[self.severity]

    @property
    def not_configured(self) -> bool:
        return self.outcome == "skipped" and self.message.startswith(NOT_CONFIGURED)


@dataclass(frozen=True)
class Summary:
    """The sweep at a glance: failures root causes first then worst first, counts, and the verdict line."""

    failed: list[CheckRecord]
    passed_records: list[CheckRecord]
    skipped: list[CheckRecord]
    counts: dict[str, dict[str, int]]
    verdict: str
    targets: dict[Severity, str]
    escalation: tuple[str, ...] = ()
    coverage: tuple[str, ...] = ()
    fix_first: tuple[str, ...] = ()

    @property
    def passed(self) -> int:
        return len(self.passed_records)

    @property
    def not_configured(self) -> list[CheckRecord]:
        return [r for r in self.skipped if r.not_configured]

    @property
    def no_verdict(self) -> bool:
        """Nothing was checked: no check ran to a pass or a failure."""
        return not self.failed and not self.passed_records


def summarize(
    records: Iterable[CheckRecord],
    targets: dict[Severity, str] = RESPONSE_TARGETS,
    escalation: tuple[str, ...] = (),
    coverage: tuple[str, ...] = (),
    fix_first: Iterable[str] = (),
) -> Summary:
    """Order the failures root causes first, worst first, and state the verdict (records already attributed)."""
    records = list(records)
    failed = sorted(
        (r for r in records if r.outcome == "failed"), key=lambda r: (r.caused_by is not None, r.level, r.check_id)
    )
    skipped = [r for r in records if r.outcome == "skipped"]
    passed = [r for r in records if r.outcome == "passed"]
    counts = {
        level.name: {
            outcome: sum(r.severity == level.name and r.outcome == outcome for r in records)
            for outcome in ("failed", "passed", "skipped")
        }
        for level in Severity
    }
    escalate = escalation if any(r.level == Severity.P1 for r in failed) else ()
    first = tuple(fix_first)
    return Summary(
        failed, passed, skipped, counts, verdict(failed, len(passed), skipped, targets, first), targets, escalate,
        coverage, first,
    )


def verdict(
    failed: list[CheckRecord],
    passed: int,
    skipped: list[CheckRecord],
    targets: dict[Severity, str] = RESPONSE_TARGETS,
    fix_first: tuple[str, ...] = (),
) -> str:
    """One line: the worst failing severity, what to do and what to fix first, or that all is well."""
    if not failed:
        if not passed:
            return f"NO VERDICT: no check ran ({len(skipped)} skipped)"
        return f"OK: {passed} checks passing, {len(skipped)} skipped"
    worst = min(r.level for r in failed)
    count = sum(r.level == worst for r in failed)
    plural = "check" if count == 1 else "checks"
    rest = len(failed) - count
    more = f" (+{rest} lower)" if rest else ""
    first = f"; fix first: {', '.join(fix_first)}" if fix_first else ""
    return f"{worst.name} {LABELS[worst]}: {count} {plural} failing{more} — {targets[worst]}{first}"


def record_of(report: Any) -> CheckRecord | None:
    """The record a test report carries, None for a report that is not a check's."""
    data = getattr(report, KEY, None)
    return CheckRecord.from_dict(data) if data else None
