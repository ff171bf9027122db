"""Secret redaction, in one place: every message, log, evidence, report, id and JSON goes through it.

Three layers, in this order:

1. **Tokens with structure, whole.** A JWT (``header.payload.signature``, the header a JSON object) is masked
   from its first to its last character, whatever it carries or is signed with: a fragment rule must never
   leave its signature readable.
2. **Known values, through the encodings a target uses.** The config's secrets, the token and every value of a
   login's answer, the secret values of the containers' environment. The text is read in *views*: as it is,
   HTML-unescaped (named and numeric entities), JSON/JavaScript-unescaped (``\\u0026``, ``\\x3c``), percent-
   and form-decoded, hex- and base64/base64url-decoded (at every alignment), each also with its whitespace
   removed (a value wrapped over two lines), and two text decodings stacked. A match in any view maps back to
   the span of the original text it came from, and that span is masked. What is masked, by the secret's length:

   - ``FRAGMENT`` (12) characters and longer: any run of ``FRAGMENT`` characters of it, anywhere; and a prefix
     or a suffix of at least ``TRUNCATED_MIN`` (8) characters standing as a word (a cut echo: ``abcdefgh…``);
   - ``WHOLE_MIN`` (8) to 11 characters: the value, anywhere;
   - ``WORD_MIN`` (4) to 7 characters (``4711``, ``pa55w``): the value where it stands as a whole word (no
     letter or digit on either side), so ``4711`` is masked in ``pin 4711`` and not in ``47110``;
   - 1 to 3 characters: the value only where it is a whole value, after ``=`` or ``:`` or as a whole quoted
     string (``PIN=42``, ``"pin": "42"``); anywhere else it is ordinary text.

   That is the floor: below 12 characters a fragment is not distinguishable from ordinary text, below 8 a
   secret is a word, below 4 a value. A secret that short is weak anyway (``auth.secret_configured`` and
   ``stack.required_env`` say so); the rule bounds what redaction can take from ordinary text to exactly the
   places where the weak secret itself would be.
3. **Secret-shaped text nobody told us about.** URL userinfo, Authorization headers, Bearer/Basic/Token
   credentials, cookies (``Cookie:``/``Set-Cookie:`` values whatever their name), and values under a
   secret-shaped key (session, token, secret, password, key, sig, auth, cookie, credential, jwt, csrf …) in
   JSON, Python reprs, query strings, headers and ``key=value`` text. A key is read by its words
   (``sessionKey`` → session, key; ``token_type`` is a type, not a token).

Redaction replaces secrets, not words: ``HTTP/1.1`` after ``access-token`` or ``(token withheld)`` stay.
The readings of a text (layer 2's views) are `readings.py`.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from .readings import ENCODINGS as ENCODINGS  # the class of encodings, for the tests and the bench
from .readings import (
    JOINED,
    RECIPE_TABLE,
    SPACE_TOKEN,
    SPACES,
    STACKED_MAX,
    TEXT,
    Readings,
    Step,
    View,
    view_of,
)

MASK = "***"
JWT_MASK = f"{MASK}jwt{MASK}"
# Lengths of the rule above (characters of the secret).
FRAGMENT = 12
TRUNCATED_MIN = 8
WHOLE_MIN = 8
WORD_MIN = 4
_HALF = FRAGMENT // 2
# Values longer than this are masked whole only (a private key in an environment variable), not by fragment.
_FRAGMENT_MAX = 8192
_ALNUM = "A-Za-z0-9"




# --- Known values ---------------------------------------------------------------------------------------


def _by_fragment(value: str) -> bool:
    """Whether fragments of `value` are masked too: a secret, not a path or a URL that a name made secret."""
    return FRAGMENT <= len(value) <= _FRAGMENT_MAX and not value.startswith(("/", "~", ".")) and "://" not in value


def _alternation(values: Iterable[str]) -> str:
    return "|".join(map(re.escape, sorted(set(values), key=len, reverse=True)))


def _base64_cores(raw: bytes) -> set[str]:
    """The base64 text of `raw` wherever it sits in a longer value: for each of the three alignments, the
    characters that depend on `raw`'s bytes alone (standard and URL-safe alphabets)."""
    cores: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        core = encoded[-(-8 * offset // 6) : 8 * (offset + len(raw)) // 6]
        cores |= {core, core.replace("+", "-").replace("/", "_")}
    return cores


def binary_forms(text: str) -> set[str]:
    """The hex (both cases) and base64 (both alphabets, every alignment) of `text` inside any longer value."""
    raw = text.encode()
    return {raw.hex(), raw.hex().upper()} | _base64_cores(raw)


# A secret longer than this has its raw fragments looked for, not their hex and base64 (a private key's PEM).
_BINARY_MAX = 1024
_Windows = tuple[tuple[int, frozenset[str]], ...]
_CHUNKS = re.compile(f".{{{_HALF}}}", re.DOTALL)


@dataclass(frozen=True)
class _Known:
    """What the known values compile to: their fragments and the fragments' hex and base64 (grouped by length,
    each with the halves of its fragments to find them fast), the values masked anywhere (with their hex and
    base64), as a word, and as a whole value. Text escapes are undone by `readings` instead: they are many
    and compose; hex and base64 are two, and a secret's own are cheaper to look for than every run to decode."""

    windows: _Windows
    halves: frozenset[str]
    anywhere: re.Pattern[str] | None
    word: re.Pattern[str] | None
    value: re.Pattern[str] | None

    @classmethod
    def of(cls, values: Iterable[str]) -> _Known:
        windows: dict[int, set[str]] = {}
        anywhere: set[str] = set()
        word: set[str] = set()
        whole_value: set[str] = set()
        for value in values:
            if _by_fragment(value):
                for i in range(len(value) - FRAGMENT + 1):
                    fragment = value[i : i + FRAGMENT]
                    found = {fragment} | (binary_forms(fragment) if len(value) <= _BINARY_MAX else set())
                    for form in found:
                        windows.setdefault(len(form), set()).add(form)
                word |= {value[:n] for n in range(TRUNCATED_MIN, FRAGMENT)}
                word |= {value[-n:] for n in range(TRUNCATED_MIN, FRAGMENT)}
            elif len(value) >= WHOLE_MIN:
                anywhere |= {value} | binary_forms(value)
            elif len(value) >= WORD_MIN:
                word.add(value)
                anywhere |= {f for f in binary_forms(value) if len(f) >= 6}
            else:
                whole_value.add(value)
        grouped = tuple((length, frozenset(group)) for length, group in sorted(windows.items()))
        halves = frozenset(w[i : i + _HALF] for group in windows.values() for w in group
                           for i in range(len(w) - _HALF + 1))
        return cls(
            grouped,
            halves,
            re.compile(_alternation(anywhere)) if anywhere else None,
            re.compile(_alternation(word)) if word else None,
            re.compile(_alternation(whole_value)) if whole_value else None,
        )

    def mask(self, text: str) -> str:
        """`text` with every span a known value covers, in any reading of it, masked. Two rounds: the JOINED
        readings, all of the same text, then the TEXT readings of the text masked so far (what the first found
        is not looked for again). Within a round every reading sees the same text: a partial match in one
        reading never cuts the whole match another reading makes."""
        wrapped = bool(self.windows or self.anywhere) and SPACE_TOKEN.search(text) is not None
        large = len(text) > STACKED_MAX
        for round_kind in (JOINED, TEXT):
            if round_kind == JOINED and not wrapped:
                continue
            current = Readings(text)
            made: dict[tuple[Step, ...], View | None] = {}
            found: list[tuple[int, int]] = []
            for node, steps, kind in RECIPE_TABLE:
                if kind != round_kind or (large and sum(s is not SPACES for s in steps) > 1):
                    continue
                seen = current.of(node)
                if seen is None:
                    continue
                local = _merged(self._local(seen, kind))
                if not local:
                    continue
                if steps:
                    view = view_of(text, steps, made)
                    if view is None:
                        continue
                    if view.text != seen:
                        local = _merged(self._local(view.text, kind))
                    local = [view.span(a, b) for a, b in local]
                found += local
            if found:
                text = _masked(text, found)
        return text

    def _local(self, text: str, kind: str) -> list[tuple[int, int]]:
        found = self._windows(text)
        if self.anywhere is not None:
            found += [m.span() for m in self.anywhere.finditer(text)]
        if self.word is not None and kind == TEXT:  # literals found at C speed, their boundaries checked here
            found += [m.span() for m in self.word.finditer(text) if _is_word(text, *m.span())]
        if self.value is not None and kind == TEXT:
            found += [m.span() for m in self.value.finditer(text) if _is_value(text, *m.span())]
        return found

    def _windows(self, text: str) -> list[tuple[int, int]]:
        """A fragment (of any length L >= 2 * `_HALF`) starting at i holds the `_HALF` characters at the multiple
        of `_HALF` in [i, i + _HALF]. The text is cut into those blocks at C speed and compared with the
        fragments' blocks as sets; only on a common block are the fragments around it looked up."""
        if not self.windows or len(text) < FRAGMENT:
            return []
        blocks = _CHUNKS.findall(text)
        common = self.halves.intersection(blocks)
        if not common:
            return []
        hits = [n * _HALF for n, block in enumerate(blocks) if block in common]
        found: list[tuple[int, int]] = []
        for length, windows in self.windows:
            last = len(text) - length
            # The candidates around the hits as runs (adjacent hits share theirs), each start tried once; a
            # start whose window ends inside what is found already adds nothing and is skipped.
            back = length - _HALF
            runs: list[list[int]] = []
            for q in hits:  # ascending: a run grows while the next hit's candidates touch it
                first = q - back if q > back else 0
                if runs and first <= runs[-1][1]:
                    runs[-1][1] = q + 1
                else:
                    runs.append([first, q + 1])
            covered, mine = 0, len(found)
            for first, end in runs:
                first = first if first > covered - length else covered - length + 1
                for i in range(first, end if end <= last else last + 1):
                    if text[i : i + length] in windows:
                        if len(found) > mine and i < covered:  # overlapping the last: one span grows
                            found[-1] = (found[-1][0], i + length)
                        else:
                            found.append((i, i + length))
                        covered = i + length
        return found


def _alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _is_word(text: str, start: int, end: int) -> bool:
    """No letter or digit on either side of text[start:end]."""
    return not (start and _alnum(text[start - 1])) and not (end < len(text) and _alnum(text[end]))


_VALUE_AFTER = frozenset(" \t\r\n\"'<,;&})]")


def _is_value(text: str, start: int, end: int) -> bool:
    """text[start:end] is a whole value: after `=`/`:` (a space or a quote between allowed) or a quote or `>`,
    and followed by the end, whitespace, a quote, `<` or a separator."""
    if end < len(text) and text[end] not in _VALUE_AFTER:
        return False
    before = text[max(0, start - 3) : start]
    return (before[-1:] in ("=", ":", '"', "'", ">") and before != "") or (
        len(before) >= 2 and before[-2] in "=:" and before[-1] in " \t\"'") or (
        len(before) == 3 and before[0] in "=:" and before[1] == " " and before[2] in "\"'")


def _merged(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """`spans` sorted, those that overlap made one (two secrets side by side stay two masks)."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _masked(text: str, spans: Iterable[tuple[int, int]], mask: str = MASK) -> str:
    """`text` with each run covered by `spans` (merged where they touch) replaced by one `mask`."""
    merged = _merged(spans)
    if not merged:
        return text
    parts, at = [], 0
    for start, end in merged:
        parts += [text[at:start], mask]
        at = end
    parts.append(text[at:])
    return "".join(parts)


# --- Secret-shaped text ---------------------------------------------------------------------------------

# A key holds a secret when one of its words is one of these (or contains one of the long ones).
_SECRET_WORDS = {"key", "sig", "sid", "pwd", "pw", "pass", "otp", "auth", "authorization", "csrf", "xsrf", "dsn",
                 "salt", "cred", "creds", "passcode", "pin", "hmac", "bearer", "cookie", "cookies"}
_SECRET_PARTS = ("password", "passwd", "passphrase", "secret", "token", "credential", "signature", "apikey",
                 "cookie", "session", "jwt", "privatekey", "accesskey")
# ...unless its last word says it holds something else about the secret.
_ABOUT_WORDS = {"type", "types", "kind", "field", "fields", "header", "headers", "name", "names", "path", "file",
                "url", "uri", "length", "len", "ttl", "expires", "expiry", "exp", "at", "in", "count", "max", "min",
                "algorithm", "alg", "scheme", "style", "enabled", "required", "id", "ids", "age", "seconds",
                "minutes", "hours", "days", "timeout", "lifetime", "endpoint", "location", "mode", "hint",
                "withheld", "set", "configured", "valid", "invalid"}
_WORD_SPLIT = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")


def secret_key(name: str) -> bool:
    """Whether a key, header, variable or parameter named `name` holds a secret (by its words)."""
    words = [w.lower() for w in _WORD_SPLIT.findall(name)]
    if not words or words[-1] in _ABOUT_WORDS:
        return False
    lowered = name.lower()
    return any(w in _SECRET_WORDS for w in words) or any(part in lowered for part in _SECRET_PARTS)


# A credential-looking run: token characters, at least one digit, not an HTTP version.
_CREDENTIAL = r"(?!HTTP/)(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]"
_JWT = re.compile(r"(?<![A-Za-z0-9_-])e[wy][A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # postgresql://user:password@host, https://user:token@host
    (re.compile(r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+(?=@)"), rf"\g<keep>{MASK}"),
    # https://ghp_token123@github.com (a credential as the user name)
    (re.compile(rf"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.-]*://){_CREDENTIAL}{{12,}}(?=@)"), rf"\g<keep>{MASK}"),
    # Authorization: Bearer x, "authorization": "Basic x", Proxy-Authorization: Digest x (whatever its shape)
    (re.compile(r"(?P<keep>\b(?:proxy-)?authorization[\"']?[ \t]*[:=,][ \t]*b?[\"']?(?:[A-Za-z]+[ \t]+)?)"
                r"[^\s\"',;)]+", re.IGNORECASE), rf"\g<keep>{MASK}"),
    # Bearer/Basic credentials in free text; "Token" only before a long credential ("token withheld" stays)
    (re.compile(rf"(?P<keep>\b(?:Bearer|Basic)\s+){_CREDENTIAL}{{8,}}", re.IGNORECASE), rf"\g<keep>{MASK}"),
    (re.compile(rf"(?P<keep>\bToken\s+){_CREDENTIAL}{{16,}}", re.IGNORECASE), rf"\g<keep>{MASK}"),
)
# Set-Cookie: name=value; Path=/ (the first pair), Cookie: a=1; b=2 (every pair)
_SET_COOKIE = re.compile(r"(?P<keep>\bset-cookie[\"']?\s*[:=,]\s*b?[\"']?[^=\s;\"']+=)[^;\s\"']+", re.IGNORECASE)
_COOKIE = re.compile(r"(?P<keep>(?<![\w-])cookie[\"']?\s*[:=,]\s*b?[\"']?)(?P<pairs>[^\r\n\"']+)", re.IGNORECASE)
_COOKIE_PAIR = re.compile(r"(?P<keep>[^=;\s]+=)[^;\s]+")
# ?token=…, &X-Amz-Signature=…, ;sig=… in a URL (the name read by its words)
_QUERY = re.compile(r"(?P<keep>[?&;](?P<name>[\w.\-\[\]]+)=)(?P<value>[^&#\s\"'<>]+)")
_QUERY_WORDS = {"code", "ticket", "state"}
# key=value, "key": "value", 'key': 'value', key: value (no space: not "wrong password: 500"), a header line
_PAIRS = (
    re.compile(r"(?P<keep>(?<![\w.-])(?P<name>[A-Za-z_][\w.-]*)\s*=\s*[\"']?)(?P<value>[^\s\"'&,;}]+)"),
    re.compile(r"(?P<keep>[\"'](?P<name>[^\"'\s]{1,80})[\"']\s*[:=,]\s*b?(?P<quote>[\"']?))"
               r"(?P<value>(?(quote)[^\"']+|[^\s,}\])]+))"),
    re.compile(r"(?P<keep>(?<![\w.-])(?P<name>[A-Za-z_][\w.-]*):)(?P<value>[^\s\"'&,;}/][^\s\"'&,;}]*)"),
    # a header line (`X-Api-Key: …`; a hyphenated name: `auth: <cause>` is a target's failure, not a header)
    re.compile(r"(?P<keep>^[ \t]*(?P<name>[A-Za-z][\w]*-[\w-]+):[ \t]+)(?P<value>\S[^\r\n]*)", re.MULTILINE),
)
# Values that name a kind of credential or a setting, not a credential (`session = "cookie"`, `token: none`).
_PUBLIC_VALUES = re.compile(r"bearer|basic|token|jwt|none|null|true|false|cookie|header|query|form|json|static"
                            r"|graphql|plain|required|optional|disabled|enabled|value|\.\.\.|…|<[^>]*>|\{[^}]*\}|\$\{[^}]*\}|\*+"
                            r"|\*\*\*jwt\*\*\*", re.IGNORECASE)


def _pair(match: re.Match[str]) -> str:
    value = match.group("value")
    if not secret_key(match.group("name")) or _PUBLIC_VALUES.fullmatch(value) or MASK in value:
        return match.group()
    return f"{match.group('keep')}{MASK}"


def _query(match: re.Match[str]) -> str:
    name = match.group("name")
    words = {w.lower() for w in _WORD_SPLIT.findall(name)}
    if not (secret_key(name) or words & _QUERY_WORDS):
        return match.group()
    return f"{match.group('keep')}{MASK}"


def _cookies(match: re.Match[str]) -> str:
    return match.group("keep") + _COOKIE_PAIR.sub(rf"\g<keep>{MASK}", match.group("pairs"))


def _shapes(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    if "ookie" in text or "OOKIE" in text:
        text = _SET_COOKIE.sub(rf"\g<keep>{MASK}", text)
        text = _COOKIE.sub(_cookies, text)
    if "=" in text:
        text = _QUERY.sub(_query, text)
    for pattern in _PAIRS:
        text = pattern.sub(_pair, text)
    return text


def _jwt(match: re.Match[str]) -> str:
    """A JWT, whole; a dotted run whose first part is no JSON object is left to the other rules."""
    header = match.group().split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
    except (binascii.Error, ValueError):
        return match.group()
    return JWT_MASK if decoded.lstrip().startswith(b"{") else match.group()


class Redactor:
    """Masks JWTs whole, known secret values in every encoding (and by fragment), and secret-shaped text.

    `add()` makes more values secret for the rest of the sweep (the token a login obtained, its answer's
    values, the secrets read from a container); it is thread-safe and cheap when the values are already known.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        self._known = _Known.of(())
        self.add(*secrets)

    def add(self, *values: str) -> None:
        """Treat `values` as secrets from now on (any length: see the module's rule for short ones)."""
        fresh = {v for v in values if isinstance(v, str) and v.strip()} - self._values
        if not fresh:
            return
        with self._lock:
            merged = self._values | fresh
            known = _Known.of(merged)
            self._values, self._known = merged, known

    @property
    def values(self) -> frozenset[str]:
        """The known secret values."""
        return self._values

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def __call__(self, text: str) -> str:
        if not text:
            return text
        if "." in text:
            text = _JWT.sub(_jwt, text)
        if self._values:
            text = self._known.mask(text)
        return _shapes(text)

    def data(self, value: object) -> object:
        """Redact every string inside a JSON-like value (keys too); a secret-named key's value is masked whole."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(str(k)): (MASK if secret_key(str(k)) and isinstance(v, str | int) and v not in ("", None)
                                   else self.data(v)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value
