"""What every probe returns: a plain result that a check turns into a verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import Fact

Evidence = dict[str, str]
Facts = tuple[Fact, ...]


@dataclass(frozen=True)
class Finding:
    """The outcome of one probe: `ok`, and when not, a one-line `cause`; `evidence` either way; `facts`, what
    the evidence establishes in typed form (a service restarting, a relation missing), for root causes."""

    ok: bool
    cause: str = ""
    evidence: Evidence = field(default_factory=dict)
    elapsed: float = 0.0
    facts: Facts = ()

    @classmethod
    def passed(cls, evidence: Evidence | None = None, elapsed: float = 0.0, facts: Facts = ()) -> Finding:
        return cls(True, "", evidence or {}, elapsed, tuple(facts))

    @classmethod
    def failed(cls, cause: str, evidence: Evidence | None = None, elapsed: float = 0.0, facts: Facts = ()) -> Finding:
        return cls(False, cause, evidence or {}, elapsed, tuple(facts))


class TargetUnreachable(Exception):
    """A target could not be reached at all; `cause` says why in one line (refused, timed out, ...)."""

    def __init__(self, target: str, cause: str, evidence: Evidence | None = None, facts: Facts = ()) -> None:
        super().__init__(f"{target}: {cause}")
        self.target = target
        self.cause = cause
        self.evidence = evidence or {}
        self.facts = tuple(facts)


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table, as `docker compose ps` prints one."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(str(c))) for w, c in zip(widths, row, strict=False)]
    lines = [headers, *rows]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=False)).rstrip() for line in lines)
