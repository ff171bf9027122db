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
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import quote, quote_plus, unquote, unquote_plus

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


# --- The encodings a target hands a secret back in ------------------------------------------------------


def _go_json(value: str) -> str:
    """Go's encoding/json (and Rails' to_json): `<`, `>`, `&` as \\u003c, \\u003e, \\u0026."""
    escaped = json.dumps(value)[1:-1]
    return escaped.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _every_char(value: str, form: Callable[[int], str]) -> str:
    return "".join(form(ord(c)) for c in value)


def _json_every_char(value: str) -> str:
    return json.dumps(value, ensure_ascii=True)[1:-1] if any(ord(c) > 0xFFFF for c in value) else \
        _every_char(value, lambda o: f"\\u{o:04x}")


def _specials(value: str, form: Callable[[int], str]) -> str:
    return "".join(c if c.isalnum() else form(ord(c)) for c in value)


ENCODINGS: dict[str, Callable[[str], str]] = {
    "raw": lambda v: v,
    "HTML": html.escape,
    "HTML (quotes kept)": lambda v: html.escape(v, quote=False),
    "HTML named (&apos;)": lambda v: v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    .replace('"', "&quot;").replace("'", "&apos;"),
    "HTML numeric (Go html/template)": lambda v: _specials(v, lambda o: f"&#{o};"),
    "HTML decimal, every character": lambda v: _every_char(v, lambda o: f"&#{o};"),
    "HTML hex, every character": lambda v: _every_char(v, lambda o: f"&#x{o:x};"),
    "JSON": lambda v: json.dumps(v)[1:-1],
    "JSON (UTF-8)": lambda v: json.dumps(v, ensure_ascii=False)[1:-1],
    "JSON (Go \\u0026)": _go_json,
    "JSON (\\/)": lambda v: json.dumps(v)[1:-1].replace("/", "\\/"),
    "JSON \\u, every character": _json_every_char,
    "JavaScript \\x": lambda v: _specials(v, lambda o: f"\\x{o:02x}" if o < 256 else f"\\u{o:04x}"),
    "percent": lambda v: quote(v, safe=""),
    "percent (lower-case)": lambda v: re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quote(v, safe="")),
    "form": quote_plus,
    "encodeURIComponent": lambda v: quote(v, safe="-_.!~*'()"),
    "encodeURI": lambda v: quote(v, safe="-_.!~*'();/?:@&=+$,#"),
    "percent, every byte": lambda v: "".join(f"%{b:02X}" for b in v.encode()),
    "hex": lambda v: v.encode().hex(),
    "HEX": lambda v: v.encode().hex().upper(),
    "base64": lambda v: base64.b64encode(v.encode()).decode(),
    "base64url": lambda v: base64.urlsafe_b64encode(v.encode()).decode().rstrip("="),
    "base64 after 1 byte (Basic x:)": lambda v: base64.b64encode(f"x:{v}".encode()).decode(),
    "base64 after 2 bytes (Basic xy:)": lambda v: base64.b64encode(f"xy:{v}".encode()).decode(),
    "base64url after 1 byte": lambda v: base64.urlsafe_b64encode(f"u:{v}".encode()).decode(),
}
"""The class of encodings the redactor knows, by name: the tests and `bench/hostile.py` plant each of them
for several secrets, and the redactor's views below are their inverses (one view undoes a family)."""


# --- Views: the text as a target may have encoded it, mapped back to the original ----------------------


class _View:
    """A decoding of a parent text: `text`, and for each decoded piece the span of the parent it came from."""

    def __init__(self, text: str, starts: list[int], pieces: list[tuple[int, int, bool]],
                 parent: _View | None) -> None:
        self.text = text
        self._starts = starts  # where each piece starts in `text`
        self._pieces = pieces  # (parent start, parent end, literal)
        self._parent = parent

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that `text[start:end]` was decoded from."""
        first = self._at(start, False)
        last = self._at(end - 1, True)
        if self._parent is not None:
            first, _ = self._parent.span(first, first + 1)
            _, last = self._parent.span(last - 1, last)
        return first, last

    def _at(self, position: int, end: bool) -> int:
        i = bisect_right(self._starts, position) - 1
        parent_start, parent_end, literal = self._pieces[i]
        if literal:
            return parent_start + position - self._starts[i] + (1 if end else 0)
        return parent_end if end else parent_start


_Decode = Callable[[re.Match[str]], "str | None"]


def _decoded(parent_text: str, parent: _View | None, token: re.Pattern[str], decode: _Decode) -> _View | None:
    """`parent_text` with each match of `token` replaced by what `decode` makes of it (None: left as is)."""
    parts: list[str] = []
    starts: list[int] = []
    pieces: list[tuple[int, int, bool]] = []
    at = length = 0
    for match in token.finditer(parent_text):
        out = decode(match)
        if out is None:
            continue
        if match.start() > at:
            starts.append(length)
            pieces.append((at, match.start(), True))
            parts.append(parent_text[at : match.start()])
            length += match.start() - at
        if out:
            starts.append(length)
            pieces.append((match.start(), match.end(), False))
            parts.append(out)
            length += len(out)
        at = match.end()
    if not pieces:
        return None
    starts.append(length)
    pieces.append((at, len(parent_text), True))
    parts.append(parent_text[at:])
    return _View("".join(parts), starts, pieces, parent)


_HTML_TOKEN = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?")
_JSON_TOKEN = re.compile(r"\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|u[0-9a-fA-F]{4}"
                         r"|x[0-9a-fA-F]{2}|[\\/\"'bfnrt])")
_PERCENT_TOKEN = re.compile(r"%[0-7][0-9a-fA-F]|%[c-fC-F][0-9a-fA-F](?:%[89abAB][0-9a-fA-F]){1,3}")
_FORM_TOKEN = re.compile(rf"{_PERCENT_TOKEN.pattern}|\+")
# Whitespace, and the `E   ` pytest puts before each line of a failure it shows
_SPACE_TOKEN = re.compile(r"\s*\n(?:[E>](?=[ \t]))?\s*|\s+")
_SIMPLE = {"\\\\": "\\", "\\/": "/", '\\"': '"', "\\'": "'", "\\b": "\b", "\\f": "\f", "\\n": "\n", "\\r": "\r",
           "\\t": "\t"}


def _html(match: re.Match[str]) -> str | None:
    out = html.unescape(match.group())
    return out if out != match.group() else None


def _json(match: re.Match[str]) -> str | None:
    token = match.group()
    if token in _SIMPLE:
        return _SIMPLE[token]
    if token[1] == "x":
        return chr(int(token[2:], 16))
    try:
        out = json.loads(f'"{token}"')
    except ValueError:
        return None
    return out if isinstance(out, str) else None


def _percent(match: re.Match[str]) -> str | None:
    token = match.group()
    if token == "+":
        return " "
    try:
        return bytes.fromhex(token.replace("%", "")).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None




_TEXT_DECODINGS: tuple[tuple[str, re.Pattern[str], _Decode], ...] = (
    ("&", _HTML_TOKEN, _html),
    ("\\", _JSON_TOKEN, _json),
    ("%", _PERCENT_TOKEN, _percent),  # encodeURIComponent keeps `+` a plus
    ("+", _FORM_TOKEN, _percent),  # a form's `+` is a space
)


def _hex_at(skip: int) -> _Decode:
    """Decoding a hex run from its `skip`-th character (a run cut from a longer one starts anywhere)."""

    def decode(match: re.Match[str]) -> str | None:
        body = match.group()[skip:]
        return bytes.fromhex(body[: len(body) - len(body) % 2]).decode("utf-8", errors="replace")

    return decode


_HEX_DECODINGS = (_hex_at(0), _hex_at(1))


def _base64_at(skip: int) -> _Decode:
    """Decoding a base64 run from its `skip`-th character (a run cut from a longer value starts anywhere). A
    match inside maps back to the whole run: a blob that holds a secret is masked whole."""

    def decode(match: re.Match[str]) -> str | None:
        body = match.group().rstrip("=")[skip:]
        body = body[: len(body) - len(body) % 4] if len(body) % 4 == 1 else body
        if len(body) < 6:
            return None
        try:
            data = base64.b64decode(body.replace("-", "+").replace("_", "/") + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            return None
        return data.decode("utf-8", errors="replace")

    return decode


_BASE64_DECODINGS = tuple(_base64_at(skip) for skip in range(4))


_Step = tuple[re.Pattern[str], _Decode]
_SPACES: _Step = (_SPACE_TOKEN, lambda m: "")


def _apply(text: str, step: _Step) -> str:
    """`text` decoded by `step`, without the map back (what is searched; the map is built on a hit only)."""
    token, decode = step

    def one(match: re.Match[str]) -> str:
        out = decode(match)
        return match.group() if out is None else out

    return token.sub(one, text)


def view_of(text: str, steps: tuple[_Step, ...], made: dict[tuple[_Step, ...], _View | None] | None = None,
            ) -> _View | None:
    """The view `steps` make of `text`, with its map back to `text` (`made`: the views of `text` made so far)."""
    made = {} if made is None else made
    if steps in made:
        return made[steps]
    parent = view_of(text, steps[:-1], made) if len(steps) > 1 else None
    if len(steps) > 1 and parent is None:
        view = None
    else:
        token, decode = steps[-1]
        view = _decoded(parent.text if parent is not None else text, parent, token, decode)
    made[steps] = view
    return view


TEXT, JOINED = "text", "joined"


def _decodings(text: str, before: tuple[_Step, ...], depth: int = 2) -> list[tuple[tuple[_Step, ...], str]]:
    """`text` decoded once and (`depth` 2) twice by the text decodings (HTML, JSON/JS escapes, percent, form)."""
    found: list[tuple[tuple[_Step, ...], str]] = []
    for first, token, decode in _TEXT_DECODINGS:
        if not any(c in text for c in first):
            continue
        once = _apply(text, (token, decode))
        if once == text:
            continue
        found.append(((*before, (token, decode)), once))
        for second, token2, decode2 in _TEXT_DECODINGS if depth > 1 else ():
            if any(c in once for c in second):
                twice = _apply(once, (token2, decode2))
                if twice != once:
                    found.append(((*before, (token, decode), (token2, decode2)), twice))
    return found


_ONE: tuple[_Step, ...] = tuple((token, decode) for _, token, decode in _TEXT_DECODINGS)
_TRIGGERS = {token: first for first, token, _ in _TEXT_DECODINGS}
_TEXT_RECIPES: tuple[tuple[_Step, ...], ...] = ((), *((a,) for a in _ONE), *((a, b) for a in _ONE for b in _ONE))
_JOINED_RECIPES: tuple[tuple[_Step, ...], ...] = (
    (_SPACES,),
    *((_SPACES, *r) for r in _TEXT_RECIPES[1:]),
    *((*r, _SPACES) for r in _TEXT_RECIPES[1:]),
    # `\\n` decoded into a line break inside another escape (`&#\\n  57;` in a JSON string)
    *((*r, _SPACES, c) for r in _TEXT_RECIPES[1:] if r[-1][0] is _JSON_TOKEN for c in _ONE),
)
RECIPES: tuple[tuple[tuple[_Step, ...], str], ...] = (
    *((r, "joined") for r in _JOINED_RECIPES), *((r, "text") for r in _TEXT_RECIPES),
)
"""Every reading of a text, as the decodings that make it, and its kind, in the order they are searched.
JOINED readings (whitespace removed: a value wrapped over lines, inside an escape too) come first, so that
no mask made in a reading of one line cuts a value wrapped over two; they are searched only for values long
enough to be told from text, and only when the text has whitespace. TEXT readings keep their words. Hex and
base64 need no reading: the known values' own hex and base64 are looked for (see `_Known`)."""
TEXT, JOINED = "text", "joined"


def _table() -> tuple[list[tuple[int, _Step | None]], list[tuple[int, tuple[_Step, ...], str]]]:
    """Every prefix of every recipe numbered once: (its prefix's number, its last step); and each recipe as
    (its number, its steps, its kind)."""
    numbers: dict[tuple[_Step, ...], int] = {(): 0}
    nodes: list[tuple[int, _Step | None]] = [(0, None)]

    def number(steps: tuple[_Step, ...]) -> int:
        if steps not in numbers:
            parent = number(steps[:-1])
            numbers[steps] = len(nodes)
            nodes.append((parent, steps[-1]))
        return numbers[steps]

    return nodes, [(number(steps), steps, kind) for steps, kind in RECIPES]


_NODES, _RECIPE_TABLE = _table()
# What is searched may be decoded by the standard library at C speed; a hit is mapped back through the token
# by token view, searched again (the two agree but on malformed escapes).
_FAST: dict[re.Pattern[str], Callable[[str], str]] = {
    _HTML_TOKEN: html.unescape, _PERCENT_TOKEN: unquote, _FORM_TOKEN: unquote_plus,
}
# Past this length a text is read through one decoding at a time, not two stacked (a bounded cost).
_STACKED_MAX = 200_000
_UNMADE = object()


class _Readings:
    """The readings of one text, each made once (a reading that decodes nothing is skipped: a shorter recipe
    already is it)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._made: list[object] = [_UNMADE] * len(_NODES)
        self._made[0] = text

    def of(self, node: int) -> str | None:
        made = self._made[node]
        if made is not _UNMADE:
            return made  # type: ignore[return-value]
        parent, step = _NODES[node]
        before = self.of(parent)
        out = None
        if before is not None and step is not None:
            trigger = _TRIGGERS.get(step[0])
            if (any(c in before for c in trigger) if trigger else step[0].search(before)):
                fast = _FAST.get(step[0])
                decoded = fast(before) if fast is not None else _apply(before, step)
                out = decoded if decoded != before else None
        self._made[node] = out
        return out


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
        wrapped = bool(self.windows or self.anywhere) and _SPACE_TOKEN.search(text) is not None
        large = len(text) > _STACKED_MAX
        for round_kind in (JOINED, TEXT):
            if round_kind == JOINED and not wrapped:
                continue
            current = _Readings(text)
            made: dict[tuple[_Step, ...], _View | None] = {}
            found: list[tuple[int, int]] = []
            for node, steps, kind in _RECIPE_TABLE:
                if kind != round_kind or (large and sum(s is not _SPACES for s in steps) > 1):
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
