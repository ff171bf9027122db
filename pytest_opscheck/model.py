"""The sweep's model, at the bottom: severities, what a check declares, its draft and its sealed record, the
summary every reporter reads. Imports nothing of the product; every fact is typed here, never prose parsed back.

A record's life: the declaration (`CheckMeta`) is read off the check at collection; a `Draft` per run of the
check lives in `item.stash` and is filled by the parts that know something (the check's own evidence and
facts, the failure's, the stack's deploys, the wait); `sweep.record.seal` turns it, redacted and trimmed, into
one frozen `CheckRecord`; at the end of the sweep `causes.sweep_summary` makes the final records (root causes
attributed) and the `Summary`, in one place.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any


class Severity(enum.IntEnum):
    """P1 is the worst; a lower value sorts first."""

    P1 = 1
    P2 = 2
    P3 = 3
    P4 = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        """`"P1"`..`"P4"` (any case) to a Severity; ValueError otherwise."""
        try:
            return cls[text.strip().upper()]
        except (KeyError, AttributeError):
            raise ValueError(f"expected one of P1, P2, P3, P4, got {text!r}") from None


LABELS = {Severity.P1: "CRITICAL", Severity.P2: "HIGH", Severity.P3: "MEDIUM", Severity.P4: "LOW"}
# The runbooks' response-time targets; a runbook's own severity table overrides them.
RESPONSE_TARGETS = {
    Severity.P1: "respond immediately (within 15 min)",
    Severity.P2: "respond within 1 hour",
    Severity.P3: "respond within 4 hours",
    Severity.P4: "respond next business day",
}


class Scope(enum.StrEnum):
    """What a check is about: one service of the stack, or the stack (or its host) as a whole."""

    SERVICE = "service"
    STACK = "stack"


@dataclass(frozen=True)
class CheckMeta:
    """What a check declares about itself: its markers, docstring and module, read once at collection."""

    check_id: str
    severity: Severity
    resolution: str
    runbook: str | None = None
    # The runbook topics it automates (closest first), what it depends on (target names such as "db", or
    # check ids such as "db.migrations_current"; closest first), and the role of its Compose service.
    topics: tuple[str, ...] = ()
    depends: tuple[str, ...] = ()
    service: str | None = None
    # The runbook lines it automates, as glob patterns (`catalogue_lines`): "docker compose ps", "free -m".
    automates: tuple[str, ...] = ()
    scope: Scope = Scope.SERVICE
    # A mistake in the declaration (bad marker, unknown topic): the check fails with it as its cause.
    mistake: str | None = None

    @property
    def stack_wide(self) -> bool:
        return self.scope is Scope.STACK


class SkipKind(enum.StrEnum):
    """Why a check did not run: its target's key is absent, a `${VAR}` it needs is unset, it is switched off,
    or the check skipped itself for a reason of its own."""

    NOT_CONFIGURED = "not configured"
    UNSET_VARIABLE = "unset variable"
    DISABLED = "disabled"
    OTHER = "skipped"


@dataclass(frozen=True)
class Skipped:
    """A typed skip: its kind, and the config key (and variable) behind it where there is one."""

    kind: SkipKind
    key: str = ""
    variable: str = ""

    @property
    def reason(self) -> str:
        if self.kind is SkipKind.UNSET_VARIABLE:
            return f"not configured: {self.key} (${{{self.variable}}} is unset)"
        if self.kind is SkipKind.NOT_CONFIGURED:
            return f"not configured: {self.key}"
        if self.kind is SkipKind.DISABLED:
            return f"disabled: {self.key}"
        return self.key


class Skip(Exception):
    """Raised (as a pytest skip) by a fixture or a check when its target is not configured; carries the fact."""

    def __init__(self, skipped: Skipped) -> None:
        super().__init__(skipped.reason)
        self.skipped = skipped


@dataclass(frozen=True)
class Fact:
    """One thing the evidence establishes, typed for attribution: `kind` (e.g. "restarting", "oom_killed",
    "missing_relation", "lock_held", "migrations_behind"), about `subject` (a service, a table, a pid), with
    `detail` for people. Root-cause attribution reads facts, never messages."""

    kind: str
    subject: str = ""
    detail: str = ""
    at: str = ""  # when it happened (ISO 8601, UTC), where the evidence says


@dataclass(frozen=True)
class Deploy:
    """When a container was created and from which image; `created` is ISO 8601 (UTC)."""

    service: str
    container: str
    image: str
    created: str


@dataclass(frozen=True)
class Waited:
    """What ``--opscheck-wait`` did for one check: how many runs, when it passed, why it gave up (if it did)."""

    attempts: int = 1
    ready_after: float | None = None
    gave_up: str | None = None


@dataclass
class Draft:
    """A check's record while its run goes on: one per run, in `item.stash`, filled by the parts that know
    something, sealed once (`sweep.record.seal`). Nothing else is mutable in the model."""

    meta: CheckMeta
    nodeid: str
    outcome: str = "passed"
    duration: float = 0.0
    message: str = ""
    evidence: dict[str, str] = field(default_factory=dict)
    facts: list[Fact] = field(default_factory=list)
    deploys: list[Deploy] = field(default_factory=list)
    target: str | None = None
    skipped: Skipped | None = None
    waited: Waited = field(default_factory=Waited)
    started: str = ""  # when this run of the check began (ISO 8601, UTC)

    def add_evidence(self, evidence: Mapping[str, str]) -> None:
        """Evidence from one more part; what the check's own probes said first is kept."""
        for key, value in evidence.items():
            self.evidence.setdefault(key, value)


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
    """A check's result as every report shows it, and what root-cause attribution reads. Built once."""

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
    gave_up: str | None = None
    # What the check declared: its runbook topics, the checks it depends on (closest first), its Compose service.
    topics: tuple[str, ...] = ()
    depends: tuple[str, ...] = ()
    service: str | None = None
    scope: Scope = Scope.SERVICE
    # The target it could not reach, when that is why it failed.
    target: str | None = None
    skipped: Skipped | None = None
    facts: tuple[Fact, ...] = ()
    deploys: tuple[Deploy, ...] = ()
    started: str = ""  # when the check's run began (ISO 8601, UTC): what the sweep was doing at a given moment

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (what xdist carries between processes)."""
        data = asdict(self)
        data["scope"] = self.scope.value
        if self.skipped is not None:
            data["skipped"] = {**asdict(self.skipped), "kind": self.skipped.kind.value}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckRecord:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in ("topics", "depends"):
            values[name] = tuple(values.get(name, ()))
        values["facts"] = tuple(Fact(**f) for f in values.get("facts", ()))
        values["deploys"] = tuple(Deploy(**d) for d in values.get("deploys", ()))
        values["scope"] = Scope(values.get("scope", "service"))
        skipped = values.get("skipped")
        if skipped is not None:
            values["skipped"] = Skipped(SkipKind(skipped["kind"]), skipped.get("key", ""), skipped.get("variable", ""))
        return cls(**values)

    def public(self) -> dict[str, object]:
        """The record as the JSON file has it (SPEC.md)."""
        data = asdict(self)
        data["id"] = data.pop("check_id")
        if self.gave_up:  # the wait's typed outcome, said where the file's readers look
            data["message"] = f"{self.message} (not waited for: {self.gave_up})"
        return {name: data[name] for name in PUBLIC_FIELDS}

    @property
    def level(self) -> Severity:
        return Severity[self.severity]

    @property
    def stack_wide(self) -> bool:
        return self.scope is Scope.STACK

    def skipped_as(self, kind: SkipKind) -> bool:
        return self.outcome == "skipped" and self.skipped is not None and self.skipped.kind is kind

    @property
    def not_configured(self) -> bool:
        return self.skipped_as(SkipKind.NOT_CONFIGURED) or self.skipped_as(SkipKind.UNSET_VARIABLE)

    def has_fact(self, kind: str) -> bool:
        return any(f.kind == kind for f in self.facts)


@dataclass(frozen=True)
class Change:
    """One thing that changed in the stack since the last green sweep (SPEC.md: what, before, after, at)."""

    what: str
    before: str | None
    after: str | None
    at: str | None  # ISO 8601, when it happened (or was first seen)


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
    # What changed since the last sweep whose verdict was OK, newest first (filled on a failing sweep).
    last_green: str | None = None
    changes: tuple[Change, ...] = ()
    # The targets the sweep opened (built-in and a team's), by name.
    swept: tuple[str, ...] = ()

    @property
    def passed(self) -> int:
        return len(self.passed_records)

    @property
    def records(self) -> list[CheckRecord]:
        return [*self.failed, *self.passed_records, *self.skipped]

    @property
    def not_configured(self) -> list[CheckRecord]:
        return [r for r in self.skipped if r.skipped_as(SkipKind.NOT_CONFIGURED)]

    @property
    def unset(self) -> list[CheckRecord]:
        """Checks not run because a `${VAR}` their target needs is unset."""
        return [r for r in self.skipped if r.skipped_as(SkipKind.UNSET_VARIABLE)]

    @property
    def disabled(self) -> list[CheckRecord]:
        return [r for r in self.skipped if r.skipped_as(SkipKind.DISABLED)]

    @property
    def no_verdict(self) -> bool:
        """Nothing was checked: no check ran to a pass or a failure."""
        return not self.failed and not self.passed_records


def summarize(
    records: Iterable[CheckRecord],
    targets: Mapping[Severity, str] = RESPONSE_TARGETS,
    escalation: tuple[str, ...] = (),
    coverage: tuple[str, ...] = (),
    fix_first: Iterable[str] = (),
    **extra: Any,
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
    line = verdict(failed, len(passed), skipped, dict(targets), first)
    return Summary(failed, passed, skipped, counts, line, dict(targets), escalate, coverage, first, **extra)


def verdict(
    failed: list[CheckRecord],
    passed: int,
    skipped: list[CheckRecord],
    targets: Mapping[Severity, str] = RESPONSE_TARGETS,
    fix_first: tuple[str, ...] = (),
) -> str:
    """One line: the worst failing severity, what to do and what to fix first, or that all is well; the checks
    not run because a variable was unset are counted (a gate says what it did not check)."""
    unset = sum(r.skipped_as(SkipKind.UNSET_VARIABLE) for r in skipped)
    not_run = f"; {unset} not run: variable unset" if unset else ""
    if not failed:
        if not passed:
            return f"NO VERDICT: no check ran ({len(skipped)} skipped{not_run})"
        return f"OK: {passed} checks passing, {len(skipped)} skipped{not_run}"
    worst = min(r.level for r in failed)
    count = sum(r.level == worst for r in failed)
    plural = "check" if count == 1 else "checks"
    rest = len(failed) - count
    more = f" (+{rest} lower)" if rest else ""
    first = f"; fix first: {', '.join(fix_first)}" if fix_first else ""
    return f"{worst.name} {LABELS[worst]}: {count} {plural} failing{more} — {targets[worst]}{first}{not_run}"


KEY = "opscheck"  # the sealed record's attribute on a pytest test report: a plain dict, as xdist carries it


def record_of(report: object) -> CheckRecord | None:
    """The record a test report carries, None for a report that is not a check's."""
    data = getattr(report, KEY, None)
    return CheckRecord.from_dict(data) if data else None
