"""Reading a text as a target may have encoded a secret in it: the class of encodings (`ENCODINGS`), and the
*views* of a text (HTML-unescaped, JSON/JS-unescaped, percent/form-decoded, hex/base64-decoded, whitespace
removed, two stacked), each mapped back to the span of the original it came from. The known values are looked
for in these readings (`redact/__init__.py`)."""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from bisect import bisect_right
from collections.abc import Callable
from urllib.parse import quote, quote_plus, unquote, unquote_plus

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


class View:
    """A decoding of a parent text: `text`, and for each decoded piece the span of the parent it came from."""

    def __init__(self, text: str, starts: list[int], pieces: list[tuple[int, int, bool]],
                 parent: View | None) -> None:
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


def _decoded(parent_text: str, parent: View | None, token: re.Pattern[str], decode: _Decode) -> View | None:
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
    return View("".join(parts), starts, pieces, parent)


_HTML_TOKEN = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?")
_JSON_TOKEN = re.compile(r"\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|u[0-9a-fA-F]{4}"
                         r"|x[0-9a-fA-F]{2}|[\\/\"'bfnrt])")
_PERCENT_TOKEN = re.compile(r"%[0-7][0-9a-fA-F]|%[c-fC-F][0-9a-fA-F](?:%[89abAB][0-9a-fA-F]){1,3}")
_FORM_TOKEN = re.compile(rf"{_PERCENT_TOKEN.pattern}|\+")
# Whitespace, and the `E   ` pytest puts before each line of a failure it shows
SPACE_TOKEN = re.compile(r"\s*\n(?:[E>](?=[ \t]))?\s*|\s+")
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


Step = tuple[re.Pattern[str], _Decode]
SPACES: Step = (SPACE_TOKEN, lambda m: "")


def _apply(text: str, step: Step) -> str:
    """`text` decoded by `step`, without the map back (what is searched; the map is built on a hit only)."""
    token, decode = step

    def one(match: re.Match[str]) -> str:
        out = decode(match)
        return match.group() if out is None else out

    return token.sub(one, text)


def view_of(text: str, steps: tuple[Step, ...], made: dict[tuple[Step, ...], View | None] | None = None,
            ) -> View | None:
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


def _decodings(text: str, before: tuple[Step, ...], depth: int = 2) -> list[tuple[tuple[Step, ...], str]]:
    """`text` decoded once and (`depth` 2) twice by the text decodings (HTML, JSON/JS escapes, percent, form)."""
    found: list[tuple[tuple[Step, ...], str]] = []
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


_ONE: tuple[Step, ...] = tuple((token, decode) for _, token, decode in _TEXT_DECODINGS)
_TRIGGERS = {token: first for first, token, _ in _TEXT_DECODINGS}
_TEXT_RECIPES: tuple[tuple[Step, ...], ...] = ((), *((a,) for a in _ONE), *((a, b) for a in _ONE for b in _ONE))
_JOINED_RECIPES: tuple[tuple[Step, ...], ...] = (
    (SPACES,),
    *((SPACES, *r) for r in _TEXT_RECIPES[1:]),
    *((*r, SPACES) for r in _TEXT_RECIPES[1:]),
    # `\\n` decoded into a line break inside another escape (`&#\\n  57;` in a JSON string)
    *((*r, SPACES, c) for r in _TEXT_RECIPES[1:] if r[-1][0] is _JSON_TOKEN for c in _ONE),
)
RECIPES: tuple[tuple[tuple[Step, ...], str], ...] = (
    *((r, "joined") for r in _JOINED_RECIPES), *((r, "text") for r in _TEXT_RECIPES),
)
"""Every reading of a text, as the decodings that make it, and its kind, in the order they are searched.
JOINED readings (whitespace removed: a value wrapped over lines, inside an escape too) come first, so that
no mask made in a reading of one line cuts a value wrapped over two; they are searched only for values long
enough to be told from text, and only when the text has whitespace. TEXT readings keep their words. Hex and
base64 need no reading: the known values' own hex and base64 are looked for (see `_Known`)."""
TEXT, JOINED = "text", "joined"


def _table() -> tuple[list[tuple[int, Step | None]], list[tuple[int, tuple[Step, ...], str]]]:
    """Every prefix of every recipe numbered once: (its prefix's number, its last step); and each recipe as
    (its number, its steps, its kind)."""
    numbers: dict[tuple[Step, ...], int] = {(): 0}
    nodes: list[tuple[int, Step | None]] = [(0, None)]

    def number(steps: tuple[Step, ...]) -> int:
        if steps not in numbers:
            parent = number(steps[:-1])
            numbers[steps] = len(nodes)
            nodes.append((parent, steps[-1]))
        return numbers[steps]

    return nodes, [(number(steps), steps, kind) for steps, kind in RECIPES]


_NODES, RECIPE_TABLE = _table()
# What is searched may be decoded by the standard library at C speed; a hit is mapped back through the token
# by token view, searched again (the two agree but on malformed escapes).
_FAST: dict[re.Pattern[str], Callable[[str], str]] = {
    _HTML_TOKEN: html.unescape, _PERCENT_TOKEN: unquote, _FORM_TOKEN: unquote_plus,
}
# Past this length a text is read through one decoding at a time, not two stacked (a bounded cost).
STACKED_MAX = 200_000
_UNMADE = object()


class Readings:
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
