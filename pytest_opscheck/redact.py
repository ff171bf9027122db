"""Secret redaction, in one place: every message, log, evidence, report and JSON goes through it.

Two layers. Known values (the config's secrets, the token the sweep obtained, the secret-named variables
read from the containers) are masked in every form a target hands them back in: raw, HTML-escaped,
JSON-escaped, URL-encoded and base64-encoded (at each of the three byte alignments, so inside a Basic
credential too), and any run of `FRAGMENT` characters of one of those forms (a truncated echo such as
``changethi...XHKoUfKv7DojpX8yxigTsX``). Then secret-shaped text nobody told us about: URL passwords,
Authorization headers, bearer tokens, JWTs, ``password=`` / ``"token": "…"`` pairs, secret query values.
Redaction replaces secrets, not words: ``HTTP/1.1`` after ``access-token`` or ``(token withheld)`` stay.
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

MASK = "***"
# A run of this many characters of a known secret (in any of its forms) is masked wherever it appears.
FRAGMENT = 12
_HALF = FRAGMENT // 2
# Too short to replace blindly without mangling ordinary text.
_MIN_SECRET_LENGTH = 4
# Values longer than this are masked whole only (a private key in an environment variable), not by fragment.
_FRAGMENT_MAX = 8192

_KEYS = r"(?:password|passwd|pwd|secret|token|ticket|signature|credential|api_?key|apikey)"
_QUERY_NAMES = r"(?:token|ticket|secret|passw|pwd|sig|signature|credential|key|auth|session|code|jwt|otp|sid)"
# A credential-looking run: token characters, at least one digit, not an HTTP version.
_CREDENTIAL = r"(?!HTTP/)(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]"
_PATTERNS = (
    # postgresql://user:password@host, https://user:token@host
    (re.compile(r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+(?=@)"), rf"\g<keep>{MASK}"),
    # Authorization: Bearer x, "authorization": "Basic x", Proxy-Authorization: Digest x (whatever its shape)
    (re.compile(r"(?P<keep>\b(?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:[A-Za-z]+[ \t]+)?)[^\s\"',;]+",
                re.IGNORECASE), rf"\g<keep>{MASK}"),
    # Bearer/Basic credentials in free text; "Token" only before a long credential ("token withheld" stays)
    (re.compile(rf"(?P<keep>\b(?:Bearer|Basic)\s+){_CREDENTIAL}{{8,}}", re.IGNORECASE), rf"\g<keep>{MASK}"),
    (re.compile(rf"(?P<keep>\bToken\s+){_CREDENTIAL}{{16,}}", re.IGNORECASE), rf"\g<keep>{MASK}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), f"{MASK}jwt{MASK}"),
    # ?token=…, &X-Amz-Signature=…, ;sig=… in a URL
    (re.compile(rf"(?P<keep>[?&;][\w.\-\[\]]*?{_QUERY_NAMES}[\w.\-\[\]]*=)[^&#\s\"'<>]+", re.IGNORECASE),
     rf"\g<keep>{MASK}"),
    # POSTGRES_PASSWORD=..., "password": "...", 'SECRET_KEY': '...', password:... (not "wrong password: 500")
    (re.compile(rf"(?P<keep>\b\w*{_KEYS}\w*\s*=\s*[\"']?)[^\s\"'&,;}}]+", re.IGNORECASE), rf"\g<keep>{MASK}"),
    (re.compile(rf"(?P<keep>[\"'](?!token_type[\"'])\w*{_KEYS}\w*[\"']\s*:\s*[\"'])[^\"']+", re.IGNORECASE),
     rf"\g<keep>{MASK}"),
    (re.compile(rf"(?P<keep>\b\w*{_KEYS}\w*:)[^\s\"'&,;}}]+", re.IGNORECASE), rf"\g<keep>{MASK}"),
)
# The key-value patterns above backtrack over every word: they run only on text that names a key at all.
_KEYED = re.compile(_KEYS, re.IGNORECASE)
_UNKEYED = len(_PATTERNS) - 3


def _base64_cores(raw: bytes) -> set[str]:
    """The base64 text of `raw` wherever it sits in a longer value: for each of the three alignments, the
    characters that depend on `raw`'s bytes alone (standard and URL-safe alphabets)."""
    cores: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        first = -(-8 * offset // 6)  # the first character holding no bit of the padding prefix
        last = 8 * (offset + len(raw)) // 6  # past the last character made of `raw`'s bits alone
        core = encoded[first:last]
        if len(core) >= _MIN_SECRET_LENGTH:
            cores.update((core, core.replace("+", "-").replace("/", "_")))
    return cores


def forms(value: str) -> set[str]:
    """The ways `value` comes back from a target: raw, HTML-escaped, JSON-escaped, URL-encoded, base64."""
    found = {value, html.escape(value), html.escape(value, quote=False)}
    found.add(value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
              .replace("'", "&#39;"))
    for ascii_only in (True, False):
        escaped = json.dumps(value, ensure_ascii=ascii_only)[1:-1]
        found.update((escaped, escaped.replace("/", "\\/")))
    for encoded in (quote(value, safe=""), quote_plus(value), quote(value, safe="/:@")):
        found.update((encoded, re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), encoded)))
    found |= _base64_cores(value.encode())
    return {f for f in found if len(f) >= _MIN_SECRET_LENGTH}


def _by_fragment(value: str) -> bool:
    """Whether fragments of `value` are masked too: a secret, not a path or a URL that a name made secret."""
    return FRAGMENT <= len(value) <= _FRAGMENT_MAX and not value.startswith(("/", "~", ".")) and "://" not in value


@dataclass(frozen=True)
class _Known:
    """What the known values compile to: their fragments (`FRAGMENT` characters of a form, and the halves
    of those, to find them fast) and one pattern for the forms masked whole."""

    windows: frozenset[str]
    halves: frozenset[str]
    whole: re.Pattern[str] | None

    @classmethod
    def of(cls, values: Iterable[str]) -> _Known:
        windows: set[str] = set()
        whole: set[str] = set()
        for value in values:
            for form in forms(value):
                if _by_fragment(value) and len(form) >= FRAGMENT:
                    windows.update(form[i : i + FRAGMENT] for i in range(len(form) - FRAGMENT + 1))
                else:
                    whole.add(form)
        halves = {w[i : i + _HALF] for w in windows for i in range(FRAGMENT - _HALF + 1)}
        ordered = sorted(whole, key=len, reverse=True)
        pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        return cls(frozenset(windows), frozenset(halves), pattern)

    def mask(self, text: str) -> str:
        if self.windows and len(text) >= FRAGMENT:
            text = self._mask_windows(text)
        if self.whole is not None:
            text = self.whole.sub(MASK, text)
        return text

    def _mask_windows(self, text: str) -> str:
        """`text` with every run covered by known fragments replaced by one mask.

        A fragment starting at i holds the half-fragment at the multiple of `_HALF` in [i, i + _HALF]: only
        those positions are looked up, then the fragments around each hit.
        """
        last = len(text) - FRAGMENT
        hits = [q for q in range(0, len(text) - _HALF + 1, _HALF) if text[q : q + _HALF] in self.halves]
        starts = sorted({
            i for q in hits for i in range(max(0, q - _HALF), min(q, last) + 1)
            if text[i : i + FRAGMENT] in self.windows
        })
        if not starts:
            return text
        spans: list[list[int]] = []
        for i in starts:
            if spans and i <= spans[-1][1]:
                spans[-1][1] = i + FRAGMENT
            else:
                spans.append([i, i + FRAGMENT])
        parts, at = [], 0
        for start, end in spans:
            parts += [text[at:start], MASK]
            at = end
        parts.append(text[at:])
        return "".join(parts)


class Redactor:
    """Replaces known secret values (in every form, and by fragment) and secret-shaped text.

    `add()` makes more values secret for the rest of the sweep (the token a login obtained, the secrets
    read from a container); it is thread-safe and cheap when the values are already known.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        self._known = _Known.of(())
        self.add(*secrets)

    def add(self, *values: str) -> None:
        """Treat `values` as secrets from now on (values shorter than 4 characters are ignored)."""
        fresh = {v for v in values if isinstance(v, str) and len(v) >= _MIN_SECRET_LENGTH} - self._values
        if not fresh:
            return
        with self._lock:
            merged = self._values | fresh
            known = _Known.of(merged)
            self._values, self._known = merged, known

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def __call__(self, text: str) -> str:
        text = self._known.mask(text)
        patterns = _PATTERNS if _KEYED.search(text) else _PATTERNS[:_UNKEYED]
        for pattern, replacement in patterns:
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
