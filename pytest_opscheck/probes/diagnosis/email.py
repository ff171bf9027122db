"""Email: the relay host and the sender address are configured (the session itself is the smtp target's)."""

from __future__ import annotations

from ...config import Settings
from ..result import Finding


def _unset(settings: Settings, key: str) -> str | None:
    """`smtp.sender is not set` or `smtp.sender (${EMAILS_FROM_EMAIL} is not set)`; None when set."""
    reason = settings.missing(key)
    if reason is None:
        return None
    detail = reason.removeprefix("not configured: ")
    return detail if "(" in detail else f"{detail} is not set"


def configured(settings: Settings) -> Finding:
    """The relay host and the sender address are set."""
    problems = []
    host = _unset(settings, "smtp.host")
    if host:
        problems.append(f"no relay host: {host}")
    sender_missing = _unset(settings, "smtp.sender")
    sender = settings.smtp.sender if settings.smtp else None
    if sender_missing:
        problems.append(f"no sender address (EMAILS_FROM_EMAIL): {sender_missing}")
    elif sender is not None and "@" not in sender:
        problems.append(f"sender {sender!r} is not an email address")
    if problems:
        return Finding.failed("; ".join(problems))
    assert settings.smtp is not None
    return Finding.passed({"smtp": f"relay {settings.smtp.host}:{settings.smtp.port}, sender {sender}"})
