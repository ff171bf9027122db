"""Secrets the sweep learns as it goes: the credential a login obtained, every value its answer returned (any
field of a JSON answer, any cookie it set, whatever their names), and the secret values of the containers'
environment become the redactor's as soon as their target is open (the probes expose them as `secrets` on
their resource, and a login as `login.answer`; they know nothing of the sweep), and the records are redacted
once more at the end with all of them."""

from __future__ import annotations

from typing import Any

from ..context import SweepContext
from ..probes.secrets import answer_secrets, set_cookie_values


def secrets_of(handle: Any) -> set[str]:
    """The secrets a target's handle holds: its `secrets`, and every value of its login's answer."""
    found = {s for s in getattr(handle, "secrets", ()) or () if isinstance(s, str)}
    login = getattr(handle, "login", None)
    answer = getattr(login, "answer", None)
    # Only a credential exchange that succeeded hands back credentials; a refusal's or a 422's words are words.
    succeeded = getattr(login, "credential", None) is not None or getattr(login, "token", None) is not None
    if answer is not None and succeeded and 200 <= getattr(answer, "status", 0) < 300:
        config = getattr(handle, "config", None)
        public = [getattr(config, "username", None) or ""]
        headers = getattr(answer, "headers", {}) or {}
        raw = getattr(answer, "raw_headers", None) or list(headers.items())
        cookies = set_cookie_values(raw)
        try:
            data = answer.json()
        except (ValueError, RecursionError):
            data = None
        found |= answer_secrets(data, cookies, public)
    return found


def learn(ctx: SweepContext) -> None:
    """Feed the redactor the secrets of every target opened so far (never waits on one still opening)."""
    for handle in ctx.targets.ready():
        found = secrets_of(handle)
        if found:
            ctx.redact.add(*found)

