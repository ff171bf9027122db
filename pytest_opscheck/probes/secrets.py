"""What a secret looks like to the probes: weak secrets (shared by the stack's and the auth probes' verdicts),
the values a credential exchange hands back (every one a secret from the moment it exists), and SQL text
with everything that may hold a secret masked (another session's query)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# Values an .env template ships with: a secret that still holds one was never set.
PLACEHOLDERS = {"changethis", "changeme", "change_me", "secret", "password", "todo", "xxx"}
# The shortest token-signing secret that is not too short (characters).
MIN_SECRET_LENGTH = 32

# Fields of a login answer known to be public: what kind of token it is and how long it lasts, who logged in.
PUBLIC_ANSWER_FIELDS = {
    "token_type", "tokentype", "type", "expires_in", "expiresin", "expires_at", "expiresat", "expires", "expiry",
    "exp", "iat", "nbf", "scope", "scopes", "status", "statuscode", "message", "detail", "ok", "success",
    "__typename", "role", "roles", "is_active", "isactive", "is_superuser", "is_staff", "full_name", "fullname",
    "name", "first_name", "last_name", "email", "username", "login", "id", "user_id", "userid", "pk", "created_at",
    "updated_at", "createdat", "updatedat", "locale", "language", "timezone",
}
PUBLIC_ANSWER_VALUES = {"bearer", "token", "jwt", "ok", "success", "true", "false", "null", "none"}
# A value shorter than this in a login answer is a flag or a count, not a credential.
SHORTEST_ANSWER_VALUE = 4
# A plain word this long or longer in a login answer may be a credential (a passphrase); a shorter one is a word.
WORD_LIKE = 12
# Nesting past this depth is not a login answer; it is not walked (no recursion limit to hit).
_DEPTH = 32


def answer_secrets(data: Any, cookies: Iterable[str] = (), public: Iterable[str] = ()) -> set[str]:
    """Every value a credential exchange returned that is not known to be public: each string (and long
    number) of a login's JSON answer, whatever its field's name (`sessionKey`, `value`, `data.login.jwt`),
    and each cookie value the answer set, whatever the cookie's name. `public` are values the sweep sent
    itself (the user name), which stay readable."""
    shown = {p for p in public if p}
    found: set[str] = set()
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, field, depth = stack.pop()
        if depth > _DEPTH:
            continue
        if isinstance(value, Mapping):
            stack += [(v, str(k), depth + 1) for k, v in value.items()]
        elif isinstance(value, list | tuple):
            stack += [(v, field, depth + 1) for v in value]
        elif isinstance(value, bool) or value is None or field.lower() in PUBLIC_ANSWER_FIELDS:
            continue
        elif isinstance(value, int | float | str) and _credential_like(str(value)) and str(value) not in shown:
            found.add(str(value))
    found |= {c for c in cookies if c and len(c) >= SHORTEST_ANSWER_VALUE}
    return found


def _credential_like(text: str) -> bool:
    """Whether a login answer's value may be a credential: no prose (a space), no plain word shorter than
    `WORD_LIKE` letters (`admin`, `login`: masking those would take words out of every report), no flag."""
    if len(text) < SHORTEST_ANSWER_VALUE or any(c.isspace() for c in text) or text.lower() in PUBLIC_ANSWER_VALUES:
        return False
    return len(text) >= WORD_LIKE or not text.isalpha()


def set_cookie_values(headers: Iterable[tuple[str, str]]) -> set[str]:
    """The value of each `Set-Cookie` header among `headers` (name, value pairs), whatever the cookie's name."""
    found = set()
    for name, value in headers:
        if name.lower() != "set-cookie":
            continue
        # Several Set-Cookie headers folded into one (`a=1; Path=/, b=2`), not split inside `Expires=Wed, 21 …`
        for cookie in _FOLDED.split(value):
            pair = cookie.split(";", 1)[0]
            if "=" in pair:
                found.add(pair.split("=", 1)[1].strip().strip('"'))
    return {v for v in found if v}


_FOLDED = re.compile(r",\s*(?=[^;,=\s]+=)")


# PostgreSQL's lexical structure, for masking: comments nest (`/* /* */ */`), strings come as '…', E'…'
# (backslash escapes), U&'…', $tag$…$tag$; quoted identifiers are names and stay.
_DOLLAR = re.compile(r"\$([A-Za-z_\x80-\uffff][\w\x80-\uffff]*)?\$")
_MASKS = {"line": "--…", "block": "/*…*/", "dollar": "$…$", "escaped": "E'…'", "string": "'…'"}


def mask_sql(query: str) -> str:
    """`query` with its comments (nested ones read to their real end), string literals and dollar-quoted bodies
    masked: whatever a session typed there (a password in `ALTER ROLE … PASSWORD '…'`, a token in a comment)
    is not shown. An unterminated one is masked to the end. Linear in the query's length."""
    out: list[str] = []
    i, n = 0, len(query)
    plain = 0
    while i < n:
        char = query[i]
        two = query[i : i + 2]
        kind = None
        if two == "--":
            end = query.find("\n", i)
            end, kind = (n if end < 0 else end), "line"
        elif two == "/*":
            end, kind = _block_end(query, i), "block"
        elif char == "$" and (match := _DOLLAR.match(query, i)) and not (i and (query[i - 1].isalnum()
                                                                               or query[i - 1] == "_")):
            close = query.find(match.group(), match.end())
            end, kind = (n if close < 0 else close + len(match.group())), "dollar"
        elif char in "eE" and query[i + 1 : i + 2] == "'" and not (i and (query[i - 1].isalnum()
                                                                         or query[i - 1] in "_$")):
            end, kind = _quoted_end(query, i + 1, backslash=True), "escaped"
        elif char == "'":
            end, kind = _quoted_end(query, i, backslash=False), "string"
        elif char == '"':
            close = query.find('"', i + 1)
            while close >= 0 and query[close + 1 : close + 2] == '"':
                close = query.find('"', close + 2)
            i = n if close < 0 else close + 1
            continue
        if kind is None:
            i += 1
            continue
        out += [query[plain:i], _MASKS[kind]]
        i = plain = end
    out.append(query[plain:])
    return "".join(out)


def _block_end(query: str, start: int) -> int:
    """The index past the `*/` that closes the comment opened at `start`, nested comments counted."""
    depth, i, n = 0, start, len(query)
    while i < n:
        two = query[i : i + 2]
        if two == "/*":
            depth, i = depth + 1, i + 2
        elif two == "*/":
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return n


def _quoted_end(query: str, quote: int, backslash: bool) -> int:
    """The index past the quote that closes the string whose opening quote is at `quote` ('' is a quote)."""
    i, n = quote + 1, len(query)
    while i < n:
        char = query[i]
        if backslash and char == "\\":
            i += 2
        elif char == "'":
            if query[i + 1 : i + 2] == "'":
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return n
