"""Bounding and neutralising text that came from a target before any report shows it."""

from __future__ import annotations

import re

MESSAGE_LIMIT = 2_000
EVIDENCE_LIMIT = 64_000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str, limit: int) -> str:
    """`text` with terminal control characters shown as escapes and cut to `limit` characters, saying so."""
    if len(text) > limit:
        text = f"{text[:limit]}\n[truncated: {len(text) - limit} more characters]"
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
