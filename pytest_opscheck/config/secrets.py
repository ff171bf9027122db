"""The config's strings as a hostile file or environment may write them: refused when they hold NUL, a line
break or a control character, or are too long; literal secrets in a URL refused; and what ``${NAME}`` puts
into a URL's userinfo or query made a secret (and percent-encoded in the userinfo, so a password holding
``/`` or ``@`` stays a password). A leaf: it imports nothing of the package."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, unquote

# A reference as Compose writes it (the same forms as the stack's .env): ${NAME}; ${NAME:-default} (unset or
# empty) and ${NAME-default} (unset); ${NAME:?message} and ${NAME?message} (required); ${NAME:+other} and
# ${NAME+other}. An argument may hold references itself, one level deep: ${DB_HOST:-${HOSTNAME}}.
REF = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>(?:[^{}$]|\$\{[^{}]*\}|\$(?!\{))*))?\}"
)
STRING_LIMIT = 4096
MULTILINE_LIMIT = 65_536
LIST_LIMIT = 1000
# Keys whose value may span lines (a GraphQL login mutation).
MULTILINE_KEYS = {"auth.query"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MULTILINE_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# URL keys whose userinfo and query may not hold a literal secret.
URL_KEYS = ("backend_url", "frontend_url", "websocket_url", "database_url")
# Query parameters that hold a credential, written literally in a URL.
_SECRET_PARAM = re.compile(
    r"pass|pwd|secret|token|ticket|sig|signature|credential|api_?key|apikey|auth|jwt|session|^key$", re.IGNORECASE
)
# Query parameters that are settings, not secrets, even when they come from the environment.
_PLAIN_PARAMS = {
    "sslmode", "schema", "connection_limit", "pool_timeout", "application_name", "connect_timeout",
    "target_session_attrs", "sslrootcert", "sslcert", "sslkey", "host", "port", "dbname", "user", "options",
    "socket_timeout", "pgbouncer", "eio", "transport", "page", "limit", "offset", "lang", "format", "v", "version",
}


class TextError(ValueError):
    """A config string refused; the message says what is wrong without repeating the value."""


def check_text(key: str, value: str) -> None:
    """Raise `TextError` when `value` (of config key `key`) holds NUL, a line break or a control character,
    or is over the length a value of its kind may have."""
    multiline = key in MULTILINE_KEYS
    limit = MULTILINE_LIMIT if multiline else STRING_LIMIT
    if len(value) > limit:
        raise TextError(f"is {len(value)} characters long, over the {limit} a value may have")
    bad = (_MULTILINE_CONTROL if multiline else _CONTROL).search(value)
    if bad is None:
        return
    char = bad.group()
    if char == "\0":
        raise TextError("holds a NUL byte: write the value without it")
    if char in "\r\n":
        raise TextError("holds a line break (CR or LF): a value of this key is one line")
    raise TextError(f"holds the control character 0x{ord(char):02x}: write the value without it")


def check_list(key: str, values: list[str]) -> None:
    if len(values) > LIST_LIMIT:
        raise TextError(f"has {len(values)} items, over the {LIST_LIMIT} a list may have")
    for value in values:
        check_text(key, value)


def _url_like(key: str) -> bool:
    """Whether config key `key` holds a URL or a path whose `?` begins a query."""
    name = key.rpartition(".")[2]
    return name.endswith(("_url", "_path", "_paths", "_routes")) or key == "auth.origin"


def _userinfo(text: str) -> tuple[int, int] | None:
    """The span of the userinfo of URL `text` (between `://` and the `@` of its authority), if any."""
    scheme = text.find("://")
    if scheme < 0:
        return None
    start = scheme + 3
    ends = [i for i in (text.find(c, start) for c in "/?#") if i >= 0]
    at = text.rfind("@", start, min(ends, default=len(text)))
    return (start, at) if at >= 0 else None


def _masked(text: str) -> str:
    """`text` with each reference blanked out character for character, so that a ``?``, ``/`` or ``@`` inside
    ``${NAME:?message}`` is not taken for a URL's parts (positions stay those of `text`)."""
    return REF.sub(lambda m: "x" * len(m.group()), text)


def _query_values(text: str) -> list[tuple[str, int, int]]:
    """(name, start, end) of each value in the query of `text`."""
    info = _userinfo(text)
    begin = text.find("?", info[1] if info else 0)
    if begin < 0:
        return []
    end = text.find("#", begin)
    end = len(text) if end < 0 else end
    found, at = [], begin + 1
    for piece in text[begin + 1 : end].split("&"):
        name, equals, _ = piece.partition("=")
        if equals:
            found.append((name, at + len(name) + 1, at + len(piece)))
        at += len(piece) + 1
    return found


class Unset(Exception):
    """A plain ``${NAME}`` whose variable is unset or empty: the key is left unconfigured (an error under
    ``--opscheck-strict``)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class Required(Exception):
    """``${NAME:?message}`` (or ``${NAME?message}``) with NAME unset: the config is refused, with the message."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"required variable {name} is not set" + (f": {message}" if message else ""))
        self.name = name


class BadReference(Exception):
    """A ``${`` that is none of the forms `REF` reads."""


def _set(name: str, variables: Mapping[str, str], empty_counts: bool) -> str | None:
    value = variables.get(name)
    if value is None or (empty_counts and value == ""):
        return None
    return value


def fill(match: re.Match[str], variables: Mapping[str, str]) -> str:
    """What one reference stands for, as Compose reads it; `Unset` for a plain ``${NAME}`` unset or empty,
    `Required` for a required one unset."""
    name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
    if op is None:
        value = _set(name, variables, empty_counts=True)
        if value is None:
            raise Unset(name)
        return value
    value = _set(name, variables, empty_counts=op.startswith(":"))
    if op.endswith("-"):
        return value if value is not None else expand(arg, variables)
    if op.endswith("+"):
        return expand(arg, variables) if value is not None else ""
    if value is None:
        raise Required(name, expand(arg, variables, lenient=True))
    return value


def expand(template: str, variables: Mapping[str, str], lenient: bool = False) -> str:
    """`template` with every reference filled in (`fill`); `BadReference` for a ``${`` of no known form.
    `lenient` (a required variable's message): a plain reference unset is empty, as Compose writes it."""
    bad_reference(template)
    parts: list[str] = []
    pos = 0
    unset: Unset | None = None  # raised once every reference is read: a required one unset is refused first
    for match in REF.finditer(template):
        try:
            value = fill(match, variables)
        except Unset as exc:
            unset = unset if unset is not None or lenient else exc
            value = ""
        parts += [template[pos : match.start()], value]
        pos = match.end()
    if unset is not None:
        raise unset
    parts.append(template[pos:])
    return "".join(parts)


def bad_reference(template: str) -> None:
    """Raise `BadReference` when `template` holds a ``${`` that is not the start of a reference `REF` reads."""
    spans = [m.span() for m in REF.finditer(template)]
    for found in re.finditer(r"\$\{", template):
        if not any(a <= found.start() < b for a, b in spans):
            shown = template[found.start() : found.start() + 30]
            raise BadReference(f"{shown!r} is not a reference: write ${{NAME}}, ${{NAME:-default}} or "
                               "${NAME:?message}")


def names(template: str) -> list[str]:
    """The variables a template refers to, arguments' references included."""
    found: list[str] = []
    for match in REF.finditer(template):
        found.append(match.group("name"))
        found += names(match.group("arg") or "")
    return found


def environment_only(value: str) -> bool:
    """Whether `value` is one reference whose text holds nothing written in the file: ``${NAME}``,
    ``${NAME:?message}``, or a default that is itself a reference (``${A:-${B}}``) (for a secret's value)."""
    match = REF.fullmatch(value)
    if match is None:
        return False
    op, arg = match.group("op"), match.group("arg") or ""
    return op is None or op.endswith("?") or not arg or environment_only(arg)


def substitute(key: str, template: str, variables: Mapping[str, str]) -> tuple[str, set[str]]:
    """`template` with each ``${NAME}`` filled in, and the secrets that made: in a URL (or a path) of `key`,
    what the environment put into the userinfo's password or into a query value (not a known setting such as
    ``sslmode``). What goes into a userinfo is percent-encoded first."""
    url = _url_like(key)
    info = _userinfo(_masked(template)) if url else None
    parts: list[str] = []
    filled: list[tuple[int, int]] = []
    pos = length = 0
    bad_reference(template)
    unset: Unset | None = None  # a required reference further on is refused first
    for match in REF.finditer(template):
        literal = template[pos : match.start()]
        try:
            value = fill(match, variables)
        except Unset as exc:
            unset, value = unset or exc, ""
        if info is not None and info[0] <= match.start() < info[1]:
            value = quote(value, safe="")
        parts += [literal, value]
        length += len(literal)
        filled.append((length, length + len(value)))
        length += len(value)
        pos = match.end()
    if unset is not None:
        raise unset
    parts.append(template[pos:])
    text = "".join(parts)
    if not url:
        return text, set()

    def from_environment(start: int, end: int) -> bool:
        return any(a < end and start < b for a, b in filled)

    secrets: set[str] = set()
    info = _userinfo(text)
    if info is not None:
        colon = text.find(":", info[0], info[1])
        if colon >= 0 and from_environment(colon + 1, info[1]):
            secrets.update({text[colon + 1 : info[1]], unquote(text[colon + 1 : info[1]])})
    for name, start, end in _query_values(text):
        if name.lower() not in _PLAIN_PARAMS and from_environment(start, end):
            secrets.update({text[start:end], unquote(text[start:end].replace("+", " "))})
    return text, {s for s in secrets if s}


def refuse_url_literals(table: Mapping[str, object], path: Path) -> str | None:
    """The one-line error for a literal secret in a URL key (a userinfo password or a credential query
    parameter not written as ``${NAME}``), else None."""
    for key in URL_KEYS:
        url = table.get(key)
        if not isinstance(url, str):
            continue
        info = _userinfo(_masked(url))
        if info is not None:
            password = url[info[0] : info[1]].partition(":")[2]
            if password and not environment_only(password):
                return (f"{path}: {key}: the password in the URL must come from the environment; write "
                        "scheme://user:${PASSWORD}@host and set PASSWORD in the environment or the .env file")
        for name, start, end in _query_values(_masked(url)):
            name, value = url[start - len(name) - 1 : start - 1], url[start:end]
            if value and _SECRET_PARAM.search(name) and not environment_only(value):
                return (f"{path}: {key}: ?{name}= holds a literal secret: write ?{name}=${{NAME}} and set NAME "
                        "in the environment or the .env file")
    return None
