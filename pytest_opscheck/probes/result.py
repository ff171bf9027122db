"""What every probe returns: a plain result that a check turns into a verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

Evidence = dict[str, str]


@dataclass(frozen=True)
class Finding:
    """The outcome of one probe: `ok`, and when not, a one-line `cause`; `evidence` either way."""

    ok: bool
    cause: str = ""
    evidence: Evidence = field(default_factory=dict)
    elapsed: float = 0.0

    @classmethod
    def passed(cls, evidence: Evidence | None = None, elapsed: float = 0.0) -> Finding:
        return cls(True, "", evidence or {}, elapsed)

    @classmethod
    def failed(cls, cause: str, evidence: Evidence | None = None, elapsed: float = 0.0) -> Finding:
        return cls(False, cause, evidence or {}, elapsed)


class TargetUnreachable(Exception):
    """A target could not be reached at all; `cause` says why in one line (refused, timed out, ...)."""

    def __init__(self, target: str, cause: str, evidence: Evidence | None = None) -> None:
        super().__init__(f"{target}: {cause}")
        self.target = target
        self.cause = cause
        self.evidence = evidence or {}


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table, as `docker compose ps` prints one."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(str(c))) for w, c in zip(widths, row, strict=False)]
    lines = [headers, *rows]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=False)).rstrip() for line in lines)
