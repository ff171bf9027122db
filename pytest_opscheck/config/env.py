"""A stack's `.env` file read as Docker Compose reads it.

python-dotenv parses the lines (quotes, escapes, comments, ``export``, multi-line values); each value is
then expanded the way Compose's own dotenv reader does (compose-go ``dotenv`` and ``template``):

- unquoted and double-quoted values are expanded, single-quoted ones are taken literally;
- ``$NAME``, ``${NAME}``; ``${NAME:-default}`` (unset or empty), ``${NAME-default}`` (unset);
  ``${NAME:+other}`` / ``${NAME+other}``; ``${NAME:?message}`` / ``${NAME?message}`` refuse the file;
  defaults may hold references themselves; ``$$`` (and ``\\$`` in double quotes) is a literal ``$``;
- a name is looked up in the environment first, then in the lines above it; an unset one is empty;
- a line with a name alone (``NAME``) takes its value from the environment.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping
from pathlib import Path

_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
# The quote that opens a binding's value, read off the binding's own text (python-dotenv does not keep it).
_OPENING_QUOTE = re.compile(r"\s*(?:export\s+)?(?:'[^']+'|[^=#\s]+)\s*=[^\S\r\n]*(['\"])?")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")

Lookup = Callable[[str], "str | None"]


ENV_FILE_LIMIT = 1 << 20


class EnvFileError(Exception):
    """The `.env` file is refused the way Compose refuses it (a required variable unset, a broken `${`)."""


def read_env_file(path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of `path`, expanded as Compose expands them; OSError/UnicodeDecodeError when unreadable."""
    from dotenv.parser import parse_stream

    values: dict[str, str] = {}

    def lookup(name: str) -> str | None:
        return environ[name] if name in environ else values.get(name)

    with path.open("rb") as handle:  # bounded: a .env is a few KB; a huge or endless file is not read whole
        raw = handle.read(ENV_FILE_LIMIT + 1)
    if len(raw) > ENV_FILE_LIMIT:
        raise EnvFileError(f"{path}: larger than {ENV_FILE_LIMIT >> 20} MiB: not an env file; point env_file at the "
                           "stack's .env")
    for binding in parse_stream(io.StringIO(raw.decode("utf-8"))):
        key, value = binding.key, binding.value
        if key is None:
            continue
        if value is None:  # `NAME` alone: from the environment, as Compose does
            if key in environ:
                values[key] = environ[key]
            continue
        opening = _OPENING_QUOTE.match(binding.original.string)
        quote = opening.group(1) if opening else None
        if quote == "'":
            values[key] = value
            continue
        if quote == '"':
            value = value.replace("\\$", "$$")  # python-dotenv keeps `\$`; Compose reads it as a literal `$`
        try:
            values[key] = expand(value, lookup)
        except EnvFileError as exc:
            raise EnvFileError(f"{key}: {exc}") from None
    return values


def expand(text: str, lookup: Lookup) -> str:
    """`text` with its `$NAME` / `${NAME...}` references replaced, as Compose's template does."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$" or i + 1 == len(text):
            out.append(char)
            i += 1
            continue
        following = text[i + 1]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "{":
            end = _closing_brace(text, i + 1)
            if end < 0:
                raise EnvFileError(f"invalid template: the ${{ at character {i + 1} has no closing brace "
                                   "(write $$ for a literal $)")
            out.append(_braced(text[i + 2 : end], lookup, i))
            i = end + 1
        elif match := _NAME.match(text, i + 1):
            out.append(lookup(match.group()) or "")
            i = match.end()
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    """The index of the `}` that closes the `{` at `start` (nested `${...}` counted), or -1."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _braced(body: str, lookup: Lookup, at: int = 0) -> str:
    """The value of `${body}`. A refusal says where, never what: the value around it may be a secret."""
    match = _NAME.match(body)
    if match is None:
        raise EnvFileError(f"invalid template: the ${{ at character {at + 1} is not followed by a variable name "
                           "(write $$ for a literal $)")
    name, rest = match.group(), body[match.end():]
    value = lookup(name)
    if not rest:
        return value or ""
    operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
    if operator is None:
        raise EnvFileError(f"invalid template: ${{{name} at character {at + 1} is followed by neither }} nor one "
                           "of :- - :+ + :? ? (write $$ for a literal $)")
    argument = rest[len(operator):]
    empty_counts = operator.startswith(":")
    present = value is not None and (value != "" or not empty_counts)
    if operator.endswith("-"):
        return value if present and value is not None else expand(argument, lookup)
    if operator.endswith("+"):
        return expand(argument, lookup) if present else (value or "")
    if not present:
        reason = expand(argument, lookup)
        raise EnvFileError(f"required variable {name} is missing a value" + (f": {reason}" if reason else ""))
    return value or ""
