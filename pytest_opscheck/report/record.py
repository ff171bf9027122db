"""One plain record per check, carried on the test report, and the summary all reporters share.

The record is built once (on the worker that ran the check), redacted there, and travels as a plain
dict on ``report.opscheck``, so that the terminal, HTML and JSON reporters read the same data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from ..severity import LABELS, RESPONSE_TARGETS, Severity

NOT_CONFIGURED = "not configured"


@dataclass(frozen=True)
class CheckRecord:
    """A check's result as every report shows it."""

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

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> CheckRecord:
        return cls(**data)  # type: ignore[arg-type]

    @property
    def level(self) -> Severity:
        return Severity[self.severity]

    @property
    def not_configured(self) -> bool:
        return self.outcome == "skipped" and self.message.startswith(NOT_CONFIGURED)


@dataclass(frozen=True)
class Summary:
    """The sweep at a glance: failures worst first, counts by severity, and the verdict line."""

    failed: list[CheckRecord]
    passed_records: list[CheckRecord]
    skipped: list[CheckRecord]
    counts: dict[str, dict[str, int]]
    verdict: str
    targets: dict[Severity, str]
    escalation: tuple[str, ...] = ()
    coverage: tuple[str, ...] = ()

    @property
    def passed(self) -> int:
        return len(self.passed_records)

    @property
    def not_configured(self) -> list[CheckRecord]:
        return [r for r in self.skipped if r.not_configured]


def summarize(
    records: Iterable[CheckRecord],
    targets: dict[Severity, str] = RESPONSE_TARGETS,
    escalation: tuple[str, ...] = (),
    coverage: tuple[str, ...] = (),
) -> Summary:
    """Order the failures worst first and state the verdict; the escalation path shows when a P1 fails."""
    records = list(records)
    # Root causes first, worst first: their consequences follow, marked "caused by".
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
    return Summary(
        failed, passed, skipped, counts, verdict(failed, len(passed), skipped, targets), targets, escalate, coverage
    )


def verdict(
    failed: list[CheckRecord], passed: int, skipped: list[CheckRecord], targets: dict[Severity, str] = RESPONSE_TARGETS
) -> str:
    """One line: the worst failing severity and what to do, or that all is well."""
    if not failed:
        if not passed:
            return f"NO VERDICT: no check ran ({len(skipped)} skipped)"
        return f"OK: {passed} checks passing, {len(skipped)} skipped"
    worst = min(r.level for r in failed)
    count = sum(r.level == worst for r in failed)
    plural = "check" if count == 1 else "checks"
    rest = len(failed) - count
    more = f" (+{rest} lower)" if rest else ""
    roots = sorted({r.caused_by for r in failed if r.caused_by})
    first = f"; fix first: {', '.join(roots)}" if roots else ""
    return f"{worst.name} {LABELS[worst]}: {count} {plural} failing{more} — {targets[worst]}{first}"
