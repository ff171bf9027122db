"""Secrets the sweep learns as it goes: the token a login obtained and the secret-named variables read from the
containers become the redactor's as soon as their target is open (the probes expose them as `secrets` on their
resource; they know nothing of the sweep), and the records are redacted once more at the end with all of them."""

from __future__ import annotations

import dataclasses

from ..context import SweepContext


def learn(ctx: SweepContext) -> None:
    """Feed the redactor the secrets of every target opened so far (never waits on one still opening)."""
    for handle in ctx.targets.ready():
        found = getattr(handle, "secrets", ())
        if found:
            ctx.redact.add(*found)


def redact_records(ctx: SweepContext) -> None:
    """Redact each kept record again, with the secrets learned since it was made."""
    redact = ctx.redact
    for nodeid, record in ctx.records.items():
        evidence = {redact(k): redact(v) for k, v in record.evidence.items()}
        ctx.records[nodeid] = dataclasses.replace(
            record, message=redact(record.message), resolution=redact(record.resolution), evidence=evidence
        )
