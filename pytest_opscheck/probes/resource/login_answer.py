"""What a login answer says: the token (at a dotted path, in GraphQL's `data`), or why there is none.

Told apart: the account refused (a 400/401/403, a GraphQL error such as "Invalid credentials"), the request
itself not matching the backend (a GraphQL validation error, FastAPI's 422 naming a field, NestJS
class-validator's list of messages, express-validator, zod, Laravel or Django REST field errors), the path,
and a server error. Nothing here shows the token; what the backend said is quoted short.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["token", "refused", "malformed", "server", "path", "other"]
TOKEN_FIELDS = ("access_token", "accessToken", "token", "jwt", "idToken", "id_token")
SAID_LIMIT = 160

# graphql-js / graphql-core / graphql-java validation and coercion messages: the operation does not fit the schema.
_GRAPHQL_MALFORMED = re.compile(
    r"^(Cannot query field|Unknown argument|Unknown type|Unknown operation|Syntax Error|Must provide"
    r"|Variable \"\$|Field \"[^\"]+\" argument \"[^\"]+\" of type|Argument \"[^\"]+\" of required type"
    r"|Expected (value of )?type|Field \"[^\"]+\" of required type|Unknown directive)"
    r"|must have a selection of subfields|must not have a selection|cannot represent a"
    r"|is not defined by operation|was not provided",
    re.IGNORECASE,
)
_GRAPHQL_MALFORMED_CODES = {"GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED", "BAD_REQUEST"}
_REFUSED_CODES = {"UNAUTHENTICATED", "UNAUTHORIZED", "FORBIDDEN"}
# Words of a refused login (Laravel answers a wrong password with a 422 on the email field, in these words).
_REFUSAL_WORDS = re.compile(
    r"credential|incorrect|wrong|do(es)? not match|invalid ((e-?mail|user(name)?|login) or password|password|login)"
    r"|(e-?mail|user(name)?|login) or password"
    r"|unauthori"
    r"|not authori|denied|log ?in failed|failed to log ?in|bad password|mismatch|not found|inactive|disabled",
    re.IGNORECASE,
)
_SERVER_WORDS = re.compile(r"internal server error|unexpected error", re.IGNORECASE)
# A 400 that names something missing from the request (passport-local's "Missing credentials"), not a refusal.
_MISSING_WORDS = re.compile(r"\bmissing\b|\bis required\b|\bare required\b", re.IGNORECASE)
_NOT_FIELDS = {"non_field_errors", "detail", "message", "error", "errors", "statusCode", "status", "code"}


@dataclass(frozen=True)
class Reading:
    """What one login answer means: its `kind`, what the backend said, the fields it named, the token."""

    kind: Kind
    said: str = ""
    named: tuple[str, ...] = ()
    token: str | None = field(default=None, repr=False)


def read_answer(status: int, data: Any, token_field: str, graphql: bool) -> Reading:
    """The meaning of a login answer of `status` whose body parsed as `data` (None when not JSON)."""
    errors = data.get("errors") if isinstance(data, dict) else None
    if 200 <= status < 300 or (graphql and isinstance(errors, list) and errors):
        token = find_token(data, token_field, graphql)
        if token is not None:
            return Reading("token", token=token)
        if isinstance(errors, list) and errors and all(isinstance(e, dict) for e in errors):
            return graphql_errors(errors, status)
        return Reading("other")
    if status in (400, 401, 403, 415, 422):
        validation = field_errors(data)
        if validation is not None and _REFUSAL_WORDS.search(validation[0]):
            return Reading("refused", validation[0])  # Laravel: a wrong password is a 422 on the email field
        if validation is not None:
            return Reading("malformed", *validation)
        said = message_of(data)
        if _MISSING_WORDS.search(said) and status in (400, 422):
            return Reading("malformed", said)
        if status in (415, 422) and not _REFUSAL_WORDS.search(said):
            return Reading("malformed", said)
        return Reading("refused", message_of(data))
    if status in (404, 405):
        return Reading("path")
    if status >= 500:
        return Reading("server", message_of(data))
    return Reading("other")


def find_token(data: Any, token_field: str, graphql: bool = False) -> str | None:
    """The token at `token_field` (dotted), else under a usual name at the top or under `data`, or, for GraphQL,
    one level into `data` (`data.login.accessToken`, or a mutation that returns the token itself)."""
    candidates: list[Any] = [dotted(data, token_field), *(dotted(data, name) for name in TOKEN_FIELDS)]
    inner = data.get("data") if isinstance(data, dict) else None
    if isinstance(inner, dict):
        candidates += [inner.get(name) for name in TOKEN_FIELDS]
        for value in inner.values() if graphql else ():
            candidates.append(value)
            if isinstance(value, dict):
                candidates += [value.get(name) for name in TOKEN_FIELDS]
    return next((c for c in candidates if isinstance(c, str) and c), None)


def dotted(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


_SERVER_CODES = {"INTERNAL_SERVER_ERROR", "INTERNAL_ERROR", "SERVICE_UNAVAILABLE", "DOWNSTREAM_SERVICE_ERROR"}


def graphql_errors(errors: list[dict[str, Any]], status: int) -> Reading:
    """GraphQL `errors`, told apart by what the server says in a structured way first (each error's
    `extensions.code`: a server failure, a refusal, the operation not fitting the schema), its words last."""
    said = "; ".join(f'"{short(str(e.get("message", "")))}"' for e in errors[:3])
    codes = {str(_extensions(e).get("code", "")).upper() for e in errors} - {""}
    if codes & _SERVER_CODES:
        failing = [e for e in errors if str(_extensions(e).get("code", "")).upper() in _SERVER_CODES]
        return Reading("server", "; ".join(f'"{short(str(e.get("message", "")))}"' for e in failing[:3]))
    if codes & _REFUSED_CODES:
        return Reading("refused", said)
    malformed = [e for e in errors if _malformed_graphql(e)]
    if malformed:
        said = "; ".join(f'"{short(str(e.get("message", "")))}"' for e in malformed[:3])
        return Reading("malformed", said, _graphql_named(malformed))
    messages = " ".join(str(e.get("message", "")) for e in errors)
    if status >= 500 or _SERVER_WORDS.search(messages):
        return Reading("server", said)
    return Reading("refused", said)


def _extensions(error: dict[str, Any]) -> dict[str, Any]:
    value = error.get("extensions")
    return value if isinstance(value, dict) else {}


def _malformed_graphql(error: dict[str, Any]) -> bool:
    extensions = _extensions(error)
    code = str(extensions.get("code", "")).upper()
    message = str(error.get("message", ""))
    if code in _GRAPHQL_MALFORMED_CODES and not _REFUSAL_WORDS.search(message):
        return True
    # NestJS: a ValidationPipe's class-validator messages ride in the error's extensions.
    for key in ("originalError", "response", "exception"):
        inner = extensions.get(key)
        if isinstance(inner, dict) and isinstance(inner.get("message"), list):
            return True
    return bool(_GRAPHQL_MALFORMED.search(message))


def _graphql_named(errors: list[dict[str, Any]]) -> tuple[str, ...]:
    named = []
    for error in errors:
        message = str(error.get("message", ""))
        named += re.findall(r'Variable "\$(\w+)"', message)
        named += re.findall(r'argument "(\w+)"', message)
    return tuple(dict.fromkeys(named))


def field_errors(data: Any) -> tuple[str, tuple[str, ...]] | None:
    """What a framework's validation error says and the fields it names; None when the body is not one."""
    if not isinstance(data, dict):
        return None
    found: list[tuple[str, str]] = []  # (field, message)
    detail = data.get("detail")
    if isinstance(detail, list):  # FastAPI / pydantic: [{"loc": ["body", "username"], "msg": "Field required"}]
        found += [(str(d["loc"][-1]) if d.get("loc") else "", str(d.get("msg", "")))
                  for d in detail if isinstance(d, dict) and ("loc" in d or "msg" in d)]
    message = data.get("message")
    if isinstance(message, list):  # NestJS class-validator: ["email must be an email", ...]
        found += [(_subject(str(m)), str(m)) for m in message]
    for key in ("errors", "issues"):
        items = data.get(key)
        if items is None and key == "issues" and isinstance(data.get("error"), dict):
            items = data["error"].get("issues")  # zod's error object passed on as it is
        if isinstance(items, list):  # express-validator, zod
            found += [(_item_field(i), str(i.get("msg") or i.get("message") or "")) for i in items
                      if isinstance(i, dict) and _item_field(i)]
        elif isinstance(items, dict):  # Laravel {"errors": {"email": [...]}}, zod's flatten()
            items = items.get("fieldErrors", items)
            found += _field_lists(items)
    if not found:
        found = _field_lists({k: v for k, v in data.items() if k not in _NOT_FIELDS})  # Django REST framework
    if not found:
        return None
    said = "; ".join(f"{name}: {short(text)}" if name and name not in text.split() else short(text)
                     for name, text in found[:3])
    return said, tuple(dict.fromkeys(name for name, _ in found if name))


def _field_lists(items: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    """(field, first message) of a `{"field": ["message", ...]}` error object; a nested serializer's errors
    (`{"user": {"email": [...]}}`, Django REST framework) named by their dotted path, `user.email`."""
    if not isinstance(items, dict) or depth > 4:
        return []
    out = []
    for name, value in items.items():
        dotted = f"{prefix}{name}"
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            out.append((dotted, value[0]))
        elif isinstance(value, dict):
            out += _field_lists(value, f"{dotted}.", depth + 1)
    return out


def _item_field(item: dict[str, Any]) -> str:
    for key in ("param", "path", "field", "property", "loc"):
        value = item.get(key)
        if isinstance(value, list) and value:
            return str(value[-1])
        if isinstance(value, str) and value:
            return value
    return ""


def _subject(message: str) -> str:
    """The property a class-validator message is about: "email must be an email" → email."""
    match = re.match(r"(?:property |each value in )?([_A-Za-z][\w.]*)\s", message)
    return match.group(1) if match else ""


def message_of(data: Any) -> str:
    """The backend's own one-line message in an error body (`detail`, `message`, `error`), if any."""
    if isinstance(data, dict):
        for key in ("detail", "message", "error", "error_description", "non_field_errors"):
            value = data.get(key)
            if isinstance(value, list) and value and isinstance(value[0], str):  # DRF's non_field_errors
                value = value[0]
            if isinstance(value, str) and value:
                return short(value)
    return ""


def short(text: str) -> str:
    """`text` on one line, at most about `SAID_LIMIT` characters: a long message keeps its first line and its
    last (where a stack of lines, such as Prisma's, says what actually failed), the middle cut."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    lines = [line for line in lines if line]
    flat = " ".join(lines)
    if len(flat) <= SAID_LIMIT:
        return flat
    if len(lines) > 1:
        first, last = lines[0], lines[-1]
        half = SAID_LIMIT // 2
        first = first if len(first) <= half else first[:half] + " …"
        last = last if len(last) <= SAID_LIMIT else last[:SAID_LIMIT] + " …"
        return f"{first} … {last}"
    return flat[:SAID_LIMIT] + " …"
