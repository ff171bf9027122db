"""Secret redaction, in one place: every message, log, evidence, report and JSON goes through it."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
_KEYS = r"(?:password|passwd|pwd|access_token|refresh_token|api_key|secret)"
_PATTERNS = (
    # postgresql://user:password@host, https://user:token@host
    (re.compile(r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+(?=@)"), rf"\g<keep>{MASK}"),
    (re.compile(r"(?P<keep>\b(?:Bearer|Basic|Token)\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE), rf"\g<keep>{MASK}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), f"{MASK}jwt{MASK}"),
    # POSTGRES_PASSWORD=..., "password": "...", password:... (but not prose such as "wrong password: 500")
    (re.compile(rf"(?P<keep>\b\w*{_KEYS}\w*\s*=\s*[\"']?)[^\s\"'&,;}}]+", re.IGNORECASE), rf"\g<keep>{MASK}"),
    (re.compile(rf"(?P<keep>[\"']{_KEYS}[\"']\s*:\s*[\"'])[^\"']+", re.IGNORECASE), rf"\g<keep>{MASK}"),
    (re.compile(rf"(?P<keep>\b\w*{_KEYS}\w*:)[^\s\"'&,;}}]+", re.IGNORECASE), rf"\g<keep>{MASK}"),
)
# Too short to replace blindly without mangling ordinary text.
_MIN_SECRET_LENGTH = 4


class Redactor:
    """Replaces known secret values and secret-shaped text (URL passwords, bearer tokens, JWTs)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted({s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._values = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def __call__(self, text: str) -> str:
        if self._values is not None:
            text = self._values.sub(MASK, text)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def data(self, value: object) -> object:
        """Redact every string inside a JSON-like value."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value
