"""Root causes, from one pure function over the records and the stack's snapshots.

A failed check is "caused by" another check when:
- its Compose service was crash-looping or stopped in a snapshot of the stack (taken when the sweep opened
  it, and again at the end): `stack.no_crash_loop` or `stack.services_running`;
- it failed because its target was unreachable: the check that states that target's own failure, or the
  one of a target it is reached through (a login refused because the backend is);
- it failed on an answer (a 500, a 503) while a check it declares it depends on failed (the login's 500
  while `db.migrations_current` fails).
Causes are followed to their root. "Fix first" lists the failed checks with no cause of their own, worst
severity first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from .model import CheckRecord, Severity, Summary, base_id, summarize

CRASH_LOOP = "stack.no_crash_loop"
STOPPED = "stack.services_running"


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


def direct_cause(
    record: CheckRecord, outcomes: Mapping[str, bool], reach: Reach, snapshots: Sequence[ServiceStates]
) -> str | None:
    """The check `record` failed because of, one step back; None when it is a root.

    `outcomes` maps each base check id that ran to whether it failed.
    """
    if record.outcome != "failed":
        return None
    own = base_id(record.check_id)
    by_service = service_cause(record.service, snapshots)
    if by_service and by_service != own:
        return by_service

    def failed(check: str) -> bool:
        return check != own and outcomes.get(check, False)

    if record.target is not None:
        chain = reach.chain(record.target)
        found = next((c for c in chain if failed(c)), None)
        if found:
            return found
        # Not run in this sweep (deselected): the target's own check is still where to look first.
        return chain[0] if chain and chain[0] != own and chain[0] not in outcomes else None
    return next((c for c in record.depends if failed(c)), None)


def root_causes(
    records: Iterable[CheckRecord], reach: Reach, snapshots: Sequence[ServiceStates] = ()
) -> dict[str, str]:
    """Each failed check (by check id) with a cause -> its root cause, causes followed back to a check with none."""
    records = list(records)
    outcomes: dict[str, bool] = {}
    for r in records:
        outcomes[base_id(r.check_id)] = outcomes.get(base_id(r.check_id), False) or r.outcome == "failed"
    direct = {r.check_id: c for r in records if (c := direct_cause(r, outcomes, reach, snapshots))}
    by_base = {base_id(cid): cause for cid, cause in direct.items()}
    roots: dict[str, str] = {}
    for check, cause in direct.items():
        seen = {base_id(check)}
        while cause in by_base and cause not in seen:
            seen.add(cause)
            cause = by_base[cause]
        if cause != base_id(check):
            roots[check] = cause
    return roots


def fix_first(records: Iterable[CheckRecord], causes: Mapping[str, str]) -> list[str]:
    """The failed checks with no cause of their own, worst severity first (each base id once)."""
    roots = sorted(
        (r.level, base_id(r.check_id)) for r in records if r.outcome == "failed" and r.check_id not in causes
    )
    return list(dict.fromkeys(cid for _, cid in roots))


def consequence_resolution(root: str) -> str:
    """What a consequence's resolution says: fix its root first."""
    return f"Fix {root} first: this check fails because {root} does. Sweep again once it passes."


def attributed(records: Iterable[CheckRecord], causes: Mapping[str, str]) -> list[CheckRecord]:
    """`records` with their root causes filled in; a consequence's resolution points at its root."""
    return [
        replace(r, caused_by=causes[r.check_id], resolution=consequence_resolution(causes[r.check_id]))
        if r.check_id in causes
        else r
        for r in records
    ]


def sweep_summary(
    records: Iterable[CheckRecord],
    reach: Reach,
    snapshots: Sequence[ServiceStates],
    targets: Mapping[Severity, str],
    escalation: tuple[str, ...] = (),
    coverage: tuple[str, ...] = (),
) -> Summary:
    """The summary every reporter reads: the records with their root causes, and what to fix first."""
    records = list(records)
    causes = root_causes(records, reach, snapshots)
    first = fix_first(records, causes) if causes else []
    return summarize(attributed(records, causes), dict(targets), escalation, coverage, first)
