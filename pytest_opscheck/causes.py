"""Root causes, from one pure function over the records' typed facts, the targets' reach graph and the stack's
snapshots: one root per fault, every other failure tied to the root it follows from, with the evidence line
that tied them.

Facts (`pytest_opscheck.probes.facts`) put the failed checks into faults ("domains"):
- one container (`service`, S): its facets — restarting, exited, not running, unhealthy, error lines in its
  log, killed for memory, the variable it exits on — are one fault. The reason goes first: the variable its
  log names (`exits_on_env`), then an OOM kill, then the crash loop, not running (an exit not restarted),
  unhealthy, the log lines.
  A container whose own log names a fault elsewhere (`connection refused` to the database, `relation "item"
  does not exist`) follows from that fault;
- one origin (`host:port`): the backend's HTTP and its WebSocket are one process; the HTTP check goes first;
- the database (down / refused), its schema (migrations behind or ahead; a missing relation or column named by
  an error), its connection slots (full; `too many clients`, a pool timing out), a lock (held by pid N; a
  request that timed out, a lock timeout). A fault's owner (the check whose own probe established it) is its
  root; a failure whose error names the fault follows from it. Without an owner a schema, database or
  connections fault is still one fault, its first symptom the root; a timeout joins a lock only when a lock
  is held.
A failed check without facts falls back on what it declares: its Compose service crash-looping or stopped in a
snapshot, the target it could not reach (and those that one is reached through), the checks it depends on.
"Fix first" lists the failed checks with no cause of their own, worst severity first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from .model import CheckRecord, Fact, Severity, Summary, base_id, summarize
from .probes import facts as F

CRASH_LOOP = "stack.no_crash_loop"
STOPPED = "stack.services_running"
LOGS = "stack.logs_clean"

# A container's facets, the reason first.
# (An exit with no restart: the container is stopped, `stack.services_running` says it first.)
FACETS = {F.EXITS_ON_ENV: 0, F.OOM_KILLED: 1, F.RESTARTING: 2, F.NOT_RUNNING: 3, F.EXITED: 4, F.UNHEALTHY: 5,
          F.OUT_OF_MEMORY: 6, F.LOG_ERRORS: 7}
# The faults elsewhere that an error names, and the facts that own each (rank 0).
NAMED = {
    F.DB_REFUSED: "db", F.DB_AUTH_FAILED: "db", F.DB_UNKNOWN: "db",
    F.MISSING_RELATION: "schema", F.MISSING_COLUMN: "schema",
    F.TOO_MANY_CLIENTS: "connections", F.POOL_TIMEOUT: "connections",
    F.LOCK_TIMEOUT: "lock", F.STATEMENT_TIMEOUT: "lock", F.TIMED_OUT: "lock",
}
OWNERS = {F.DB_DOWN: "db", F.MIGRATIONS_BEHIND: "schema", F.MIGRATIONS_AHEAD: "schema",
          F.CONNECTIONS_FULL: "connections", F.LOCK_HELD: "lock"}
ORIGIN = {F.HTTP_DOWN: 0, F.WS_DOWN: 1}
# Faults that are one fault even with no owner among the failures (their errors are specific); a timeout is not.
NEED_OWNER = {"lock"}
# In which order a container's log names a fault elsewhere as its reason.
REASONS = ("db", "connections", "lock", "schema")
SYMPTOM, LOG_SYMPTOM = 10, 20

Domain = tuple[str, str]


class ServiceStates(Protocol):
    """What a snapshot of the stack says of each service (each value has a `state`)."""

    @property
    def services(self) -> Mapping[str, object]: ...


@dataclass(frozen=True)
class Reach:
    """How targets fail: the check stating each target's own failure, and the targets each is reached through."""

    roots: Mapping[str, str]
    via: Mapping[str, tuple[str, ...]]

    def chain(self, target: str) -> list[str]:
        """The root checks of `target` and of every target it is reached through, nearest first."""
        seen: list[str] = []
        pending, visited = [target], set()
        while pending:
            name = pending.pop(0)
            if name in visited:
                continue
            visited.add(name)
            root = self.roots.get(name)
            if root and root not in seen:
                seen.append(root)
            pending.extend(self.via.get(name, ()))
        return seen


@dataclass(frozen=True)
class Tie:
    """One step back: the check a failure follows from, and the evidence that tied them."""

    cause: str
    why: str


def service_cause(service: str | None, snapshots: Sequence[ServiceStates]) -> str | None:
    """The stack check that explains a failure on `service`: crash-looping or stopped in any snapshot."""
    if service is None:
        return None
    states = {getattr(s.services.get(service), "state", None) for s in snapshots}
    if "crash-looping" in states:
        return CRASH_LOOP
    if "stopped" in states:
        return STOPPED
    return None


@dataclass(frozen=True)
class Claim:
    """A failed check's part in one fault: its rank there (0 owns it) and the fact that put it there."""

    domain: Domain
    rank: int
    fact: Fact


def claims(record: CheckRecord) -> list[Claim]:
    """The faults `record`'s facts put it in."""
    found: list[Claim] = []
    logged = {f.subject for f in record.facts if f.kind == F.LOG_ERRORS}
    for fact in record.facts:
        if fact.kind in FACETS:
            found.append(Claim(("service", fact.subject), FACETS[fact.kind], fact))
        elif fact.kind in OWNERS:
            found.append(Claim((OWNERS[fact.kind], ""), 0, fact))
        elif fact.kind in ORIGIN:
            found.append(Claim(("origin", fact.subject), ORIGIN[fact.kind], fact))
        elif fact.kind in NAMED and fact.subject not in logged:
            # An error in the check's own answer; one in a container's log is that container's reason instead.
            found.append(Claim((NAMED[fact.kind], ""), SYMPTOM, fact))
    return found


class Faults:
    """The failed records grouped into faults, and each fault's head (its best-ranked member)."""

    def __init__(self, failed: list[CheckRecord], reach: Reach) -> None:
        self.members: dict[Domain, list[tuple[int, CheckRecord, Fact]]] = {}
        self.claims = {r.check_id: claims(r) for r in failed}
        db_root = reach.roots.get("db")
        for r in failed:
            own = self.claims[r.check_id]
            if db_root and base_id(r.check_id) == db_root and not any(c.domain[0] == "db" for c in own):
                # The database target's own check owns a database fault, facts or not.
                self.claims[r.check_id].append(Claim(("db", ""), 0, Fact(F.DB_DOWN, "db", r.message)))
            for c in self.claims[r.check_id]:
                self.members.setdefault(c.domain, []).append((c.rank, r, c.fact))
        self.owned = {d for d, ms in self.members.items() if any(rank == 0 for rank, _, _ in ms)}
        # Among equals in one fault, a target's own check heads it (backend.health, not a check that merely
        # asked the backend: the target's root is where its failure is stated and fixed).
        self.target_roots = set(reach.roots.values())
        # What each service's log (or a crash loop's last run) names: its reason, if that fault is here.
        self.named: dict[str, dict[str, Fact]] = {}
        for r in failed:
            for fact in r.facts:
                if fact.kind in NAMED:
                    self.named.setdefault(fact.subject, {}).setdefault(NAMED[fact.kind], fact)

    def live(self, domain: Domain) -> bool:
        return domain in self.members and (domain[0] not in NEED_OWNER or domain in self.owned)

    def head(self, domain: Domain) -> tuple[CheckRecord, Fact] | None:
        if not self.live(domain):
            return None
        _, record, fact = min(self.members[domain], key=lambda m: (
            m[0], base_id(m[1].check_id) not in self.target_roots, m[1].level, m[1].check_id == LOGS, m[1].check_id))
        return record, fact

    def reason(self, domain: Domain) -> tuple[Domain, str] | None:
        """The fault elsewhere that `domain` follows from, and the line that says so."""
        kind, subject = domain
        head = self.head(domain)
        if kind == "service" and head is not None and FACETS[head[1].kind] >= FACETS[F.RESTARTING]:
            for name in REASONS:
                fact = self.named.get(subject, {}).get(name)
                if fact is not None and self.live((name, "")):
                    return (name, ""), f"{subject} logged: {fact.detail}"
        if kind == "origin":
            services = {r.service for _, r, _ in self.members[domain] if r.service}
            for service in sorted(services):
                if self.live(("service", service)):
                    return ("service", service), f"{subject} is served by {service}"
        if kind in OWNERS.values() and head is not None and head[0].service \
                and self.live(("service", head[0].service)):
            return ("service", head[0].service), f"{head[0].service} is not running as it should"
        return None

    def step(self, record: CheckRecord) -> Tie | None:
        """The check `record` follows from by its facts, one step back; None when a fault of its is its own."""
        found: list[tuple[int, Tie]] = []
        for claim in self.claims[record.check_id]:
            if not self.live(claim.domain):
                continue
            head = self.head(claim.domain)
            assert head is not None
            if head[0].check_id != record.check_id:
                found.append((claim.rank, Tie(base_id(head[0].check_id), _why(claim, head[1]))))
                continue
            reason = self.reason(claim.domain)
            other = self.head(reason[0]) if reason else None
            if reason is None or other is None or other[0].check_id == record.check_id:
                return None  # this fault is its own: the record is a root
            found.append((claim.rank, Tie(base_id(other[0].check_id), reason[1])))
        return min(found, key=lambda f: f[0])[1] if found else None

    def has_claims(self, record: CheckRecord) -> bool:
        return any(self.live(c.domain) for c in self.claims[record.check_id])


def _said(fact: Fact) -> str:
    """`backend: restarting (5 restarts, ...)`: what a fact says of its subject, for people."""
    return f"{fact.subject}: {fact.detail}" if fact.detail else f"{fact.subject} {fact.kind.replace('_', ' ')}"


def _why(claim: Claim, owner: Fact) -> str:
    """The evidence that tied a failure to its fault's head."""
    kind, subject = claim.domain
    if kind == "service":
        return f"same container: {_said(owner)}"
    if kind == "origin":
        return f"same process: {subject}"
    return "; ".join(dict.fromkeys(d for d in (claim.fact.detail, owner.detail) if d)) or kind


def direct_cause(
    record: CheckRecord, outcomes: Mapping[str, bool], reach: Reach, snapshots: Sequence[ServiceStates],
    faults: Faults | None = None,
) -> Tie | None:
    """What `record` failed because of, one step back; None when it is a root.

    `outcomes` maps each base check id that ran to whether it failed.
    """
    if record.outcome != "failed":
        return None
    faults = faults or Faults([record], reach)
    if faults.has_claims(record):
        return faults.step(record)
    own = base_id(record.check_id)
    if record.service is not None and faults.live(("service", record.service)):
        # Its service not running as it should (error lines in a running service's log are not that: they may
        # well be this very failure's).
        head = faults.head(("service", record.service))
        if head is not None and base_id(head[0].check_id) != own and FACETS[head[1].kind] <= FACETS[F.UNHEALTHY]:
            return Tie(base_id(head[0].check_id), _why(Claim(("service", record.service), 0, head[1]), head[1]))
    by_service = service_cause(record.service, snapshots)
    if by_service and by_service != own:
        return Tie(by_service, f"{record.service} was {'crash-looping' if by_service == CRASH_LOOP else 'stopped'}")

    def failed(check: str) -> bool:
        return check != own and outcomes.get(check, False)

    if record.target is not None:
        chain = reach.chain(record.target)
        found = next((c for c in chain if failed(c)), None)
        if found:
            return Tie(found, f"{record.target} is reached through what {found} checks")
        # Not run in this sweep (deselected): the target's own check is still where to look first.
        if chain and chain[0] != own and chain[0] not in outcomes:
            return Tie(chain[0], f"{record.target} could not be reached")
        return None
    dep = next((c for c in record.depends if failed(c)), None)
    return Tie(dep, "") if dep else None


def attribution(
    records: Iterable[CheckRecord], reach: Reach, snapshots: Sequence[ServiceStates] = ()
) -> dict[str, Tie]:
    """Each failed check (by check id) that follows from another -> its root, and why (the first step's tie)."""
    records = list(records)
    outcomes: dict[str, bool] = {}
    for r in records:
        outcomes[base_id(r.check_id)] = outcomes.get(base_id(r.check_id), False) or r.outcome == "failed"
    failed = [r for r in records if r.outcome == "failed"]
    faults = Faults(failed, reach)
    direct = {r.check_id: t for r in failed if (t := direct_cause(r, outcomes, reach, snapshots, faults))}
    by_base: dict[str, Tie] = {}
    for cid, tie in direct.items():
        by_base.setdefault(base_id(cid), tie)
    level = {base_id(r.check_id): r.level for r in failed}
    # A circle of causes (each said to follow from the next) has its worst check as its root.
    broken: set[str] = set()
    for start in list(by_base):
        path, node = [], start
        while node in by_base and node not in path:
            path.append(node)
            node = by_base[node].cause
        if node in path:
            root = min(path[path.index(node):], key=lambda c: (level.get(c, Severity.P4), c))
            del by_base[root]
            broken.add(root)
    roots: dict[str, Tie] = {}
    for check, tie in direct.items():
        own = base_id(check)
        if own in broken:
            continue
        cause, seen = tie.cause, {own}
        while cause in by_base and cause not in seen:
            seen.add(cause)
            cause = by_base[cause].cause
        if cause != own:
            roots[check] = Tie(cause, tie.why)
    return roots


def root_causes(
    records: Iterable[CheckRecord], reach: Reach, snapshots: Sequence[ServiceStates] = ()
) -> dict[str, str]:
    """Each failed check (by check id) with a cause -> its root cause, causes followed back to a check with none."""
    return {check: tie.cause for check, tie in attribution(records, reach, snapshots).items()}


# Faults that waiting does not heal: a container that keeps exiting, was killed for memory, or lacks a value.
NO_HEALING = (F.EXITS_ON_ENV, F.OOM_KILLED, F.RESTARTING, F.EXITED, F.ENV_INVALID)


def cannot_heal(
    record: CheckRecord, earlier: Iterable[CheckRecord], reach: Reach, snapshots: Sequence[ServiceStates] = ()
) -> str | None:
    """Why waiting (`--opscheck-wait`) will not make the failed `record` pass: its root among the records so far
    is a fault that does not heal by itself (the container it runs in keeps exiting, was OOM-killed, lacks a
    value); None when it may. For the wait to give up on every check whose root is such a fault, not only on
    the checks of that container."""
    records = [*(r for r in earlier if r.check_id != record.check_id), record]
    tie = attribution(records, reach, snapshots).get(record.check_id)
    root_id = tie.cause if tie else base_id(record.check_id)
    for root in (r for r in records if base_id(r.check_id) == root_id and r.outcome == "failed"):
        fact = next((f for kind in NO_HEALING for f in root.facts if f.kind == kind), None)
        if fact is not None:
            via = f"its root {root_id}: " if root_id != base_id(record.check_id) else ""
            return f"{via}{_said(fact)}"
    if tie is not None and tie.cause in (CRASH_LOOP, STOPPED):
        return f"its root {tie.cause}: {tie.why}"
    return None


def fix_first(records: Iterable[CheckRecord], causes: Mapping[str, object]) -> list[str]:
    """The failed checks with no cause of their own, worst severity first (each base id once)."""
    roots = sorted(
        (r.level, base_id(r.check_id)) for r in records if r.outcome == "failed" and r.check_id not in causes
    )
    return list(dict.fromkeys(cid for _, cid in roots))


def consequence_resolution(root: str, why: str = "") -> str:
    """What a consequence's resolution says: fix its root first (and what tied them)."""
    tied = f" ({why})" if why else ""
    return f"Fix {root} first: this check fails because {root} does{tied}. Sweep again once it passes."


def attributed(records: Iterable[CheckRecord], causes: Mapping[str, str | Tie]) -> list[CheckRecord]:
    """`records` with their root causes filled in; a consequence's resolution points at its root."""
    out = []
    for r in records:
        tie = causes.get(r.check_id)
        if tie is None:
            out.append(r)
            continue
        root, why = (tie.cause, tie.why) if isinstance(tie, Tie) else (tie, "")
        out.append(replace(r, caused_by=root, resolution=consequence_resolution(root, why)))
    return out


def sweep_summary(
    records: Iterable[CheckRecord],
    reach: Reach,
    snapshots: Sequence[ServiceStates],
    targets: Mapping[Severity, str],
    escalation: tuple[str, ...] = (),
    coverage: tuple[str, ...] = (),
    **extra: Any,
) -> Summary:
    """The summary every reporter reads: the records with their root causes, and what to fix first (`extra`:
    the summary's other fields, e.g. `swept`)."""
    records = with_triggers(list(records))
    causes = attribution(records, reach, snapshots)
    first = fix_first(records, causes) if causes else []
    return summarize(attributed(records, causes), dict(targets), escalation, coverage, first, **extra)


# A check's run is taken to cover a kill a little after it ended: the kernel logs the kill once memory is reclaimed.
TRIGGER_SLACK = timedelta(seconds=1)


def triggered_by(fact: Fact, records: Sequence[CheckRecord]) -> CheckRecord | None:
    """The sweep's own check whose run covers the moment of `fact` (an OOM kill): what made the process use
    that memory, when it was the sweep itself (its login, a heavy API path)."""
    at = _when(fact.at)
    if at is None:
        return None
    for record in records:
        started = _when(record.started)
        if started is not None and started <= at <= started + timedelta(seconds=record.duration) + TRIGGER_SLACK:
            return record
    return None


def with_triggers(records: list[CheckRecord]) -> list[CheckRecord]:
    """Each OOM-kill record with what the sweep was doing when the kill came, said in its message and its steps."""
    out = []
    for record in records:
        kill = next((f for f in record.facts if f.kind == F.OOM_KILLED and f.at), None) \
            if record.outcome == "failed" else None
        trigger = triggered_by(kill, [r for r in records if r is not record]) if kill else None
        if kill is None or trigger is None:
            out.append(record)
            continue
        said = (f"the kill came while the sweep's own {trigger.check_id} was running ({kill.at}): that request is "
                f"what needs more memory than {kill.subject}'s limit leaves")
        out.append(replace(
            record,
            message=f"{record.message}; {said}",
            resolution=f"{record.resolution}\n\nTriggered by the sweep: {said}. Raise the limit (or make that "
                       f"path lighter), then sweep again; until then every {trigger.check_id} may kill it again.",
        ))
    return out


def _when(text: str) -> datetime | None:
    try:
        found = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    return found if found is None or found.tzinfo is not None else found.replace(tzinfo=UTC)
