"""Typed facts the probes establish, for root-cause attribution: their kinds, and the catalogue of real error
signatures (what PostgreSQL, libpq/psycopg, SQLAlchemy, asyncpg, node-postgres and Prisma print) read from a
backend's answers, GraphQL errors and logs.

A fact's `subject` is what it is about: a Compose service for a container's facts, a pid for a lock, the
origin (`host:port`) for a process that does not answer, and for an error signature the one who said it (the
service whose log it is in, the path whose answer it is). Its `detail` is for people: the decisive line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from ..model import Fact

# A container's facets (subject: the service).
RESTARTING = "restarting"  # crash-looping, or exited non-zero under a restart policy
EXITED = "exited"  # exited non-zero, not restarted
RESTARTED_ONCE = "restarted_once"  # restarted once and healthy since: said as such, never a crash loop
NOT_RUNNING = "not_running"
UNHEALTHY = "unhealthy"
OOM_KILLED = "oom_killed"  # detail: the process killed, and what the sweep was doing then
LOG_ERRORS = "log_errors"  # error lines in its recent logs
ENV_INVALID = "env_invalid"  # a required variable missing, empty, a placeholder, too short (detail: its name)
EXITS_ON_ENV = "exits_on_env"  # its last run's log names that variable: the reason it exits

# The database (subject: the database or the pid).
DB_DOWN = "db_down"
LOCK_HELD = "lock_held"  # subject: the holder's pid; detail: how many wait, its query
MIGRATIONS_BEHIND = "migrations_behind"
MIGRATIONS_AHEAD = "migrations_ahead"
CONNECTIONS_FULL = "connections_full"

# A process that does not answer (subject: its origin, host:port).
HTTP_DOWN = "http_down"
WS_DOWN = "ws_down"
TIMED_OUT = "timed_out"  # a request sent, no answer in time (subject: who asked)

# Error signatures, as the stack's own software prints them (subject: who said it; detail: the line).
MISSING_RELATION = "missing_relation"
MISSING_COLUMN = "missing_column"
DB_REFUSED = "db_refused"
DB_AUTH_FAILED = "db_auth_failed"
DB_UNKNOWN = "db_unknown"
TOO_MANY_CLIENTS = "too_many_clients"
POOL_TIMEOUT = "pool_timeout"
LOCK_TIMEOUT = "lock_timeout"
STATEMENT_TIMEOUT = "statement_timeout"
OUT_OF_MEMORY = "out_of_memory"

# Each error signature: its kind and the patterns that say it (case-insensitive, searched in one line).
SIGNATURES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        # PostgreSQL 42P01 (psycopg, asyncpg, node-postgres, SQLAlchemy all quote the server's message);
        # Prisma P2021 "The table `blog.User` does not exist in the current database."
        (MISSING_RELATION, r'(?<!of )relation "(?P<name>[^"]+)" does not exist'),
        (MISSING_RELATION, r"\bP2021\b|the table [`'\"](?P<name>[^`'\"]+)[`'\"] does not exist"),
        # PostgreSQL 42703: `column user.created_at does not exist`, `column "x" of relation "y" does not exist`;
        # Prisma P2022 "The column `User.createdAt` does not exist in the current database."
        (MISSING_COLUMN, r'column (?P<name>"[^"]+"|[\w.]+)(?: of relation "[^"]+")? does not exist'),
        (MISSING_COLUMN, r"\bP2022\b|the column [`'\"](?P<name>[^`'\"]+)[`'\"] does not exist"),
        # libpq: `connection to server at "db" (172.18.0.2), port 5432 failed: Connection refused`, older
        # `could not connect to server`; psycopg 3 `failed to resolve host`; libpq `could not translate host
        # name`; asyncpg `Connect call failed ('127.0.0.1', 5432)`; node-postgres `connect ECONNREFUSED
        # 127.0.0.1:5432`; Prisma P1001 "Can't reach database server at `db:5432`".
        # (libpq's `connection to server at ... failed:` alone is the prefix of every connection error, a
        # password refused included: what follows it says which.)
        (DB_REFUSED, r"port \d+ failed: (?:Connection refused|timeout expired|No route to host|Connection timed out"
                     r"|server closed the connection)|could not connect to server|failed to resolve host"
                     r"|could not translate host name|connect call failed|\bECONNREFUSED\b|\bP1001\b"
                     r"|can't reach database server"),
        # `password authentication failed for user "app"` (28P01); Prisma P1000 "Authentication failed against
        # database server".
        (DB_AUTH_FAILED, r"password authentication failed for user|\bP1000\b"
                         r"|authentication failed against database server"),
        # `database "app" does not exist` (3D000); Prisma P1003 "Database `app` does not exist".
        (DB_UNKNOWN, r'database "[^"]+" does not exist|\bP1003\b|database [`\'][^`\']+[`\'] does not exist'),
        # 53300 `sorry, too many clients already`; `remaining connection slots are reserved for ...`; a role's
        # or a database's CONNECTION LIMIT: `too many connections for role "app"`.
        (TOO_MANY_CLIENTS, r"too many clients already|remaining connection slots are reserved"
                           r"|too many connections for (?:role|database)"),
        # Prisma P2024 "Timed out fetching a new connection from the connection pool"; SQLAlchemy's
        # `QueuePool limit of size 5 overflow 10 reached, connection timed out`.
        (POOL_TIMEOUT, r"\bP2024\b|timed out fetching a new connection|QueuePool limit of size \d+"),
        # 55P03 and 57014.
        (LOCK_TIMEOUT, r"canceling statement due to lock timeout|could not obtain lock on"),
        (STATEMENT_TIMEOUT, r"canceling statement due to statement timeout"),
        # The kernel's OOM kill as the container log or dmesg has it; Node's heap limit; Python's MemoryError.
        (OUT_OF_MEMORY, r"out of memory: killed process|JavaScript heap out of memory|^\s*MemoryError\b"),
    )
)

_FRAME = re.compile(r'^\s*File "[^"]*", line \d+')
_NODE_FRAME = re.compile(r"^\s+at (?:async )?(?:.*\(.*:\d+:\d+\)|\S+:\d+:\d+|.*\(native\)|.*\(<anonymous>\))\s*$")
_TRACEBACK = re.compile(r"Traceback \(most recent call last\):")
# The lines an exception's message goes on with: indented (libpq's hint), PostgreSQL's LINE/HINT/DETAIL, and
# SQLAlchemy's statement, parameters and link.
_MESSAGE_GOES_ON = (" ", "\t", "LINE ", "HINT", "DETAIL", "[SQL:", "[parameters:", "(Background on this error")


def signatures(text: str | Iterable[str], speaker: str) -> tuple[Fact, ...]:
    """The error signatures in `text` (one fact per kind and named object, the first line that says it)."""
    lines = text.splitlines() if isinstance(text, str) else list(text)
    found: dict[tuple[str, str], Fact] = {}
    for line in lines:
        for kind, pattern in SIGNATURES:
            match = pattern.search(line)
            if match is None:
                continue
            name = (match.groupdict().get("name") or "").strip('"')
            found.setdefault((kind, name), Fact(kind, speaker, line.strip()[:300]))
    return tuple(found.values())


_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def origin(url: str) -> str:
    """The process a URL reaches, as `host:port` (ws:// and http:// on one port are one process; every loopback
    name is `localhost`)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    host = "localhost" if host in _LOOPBACK else host
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0)
    return f"{host}:{port}"


def down(url: str, cause: str, websocket: bool = False) -> tuple[Fact, ...]:
    """For a probe that could not reach `url`: the process at its origin does not answer (refused, reset, timed
    out, no route); the same for its WebSocket (`websocket`). Nothing for an answer it did get."""
    if not re.search(r"refused|reset|timed out|timeout|no route|unreachable|closed the connection|\bEOF\b"
                     r"|connect call failed|could not connect|errno 111|ECONNREFUSED", cause, re.I):
        return ()
    return (Fact(WS_DOWN if websocket else HTTP_DOWN, origin(url), cause[:300]),)


def answered(status: int | None, body: str, speaker: str) -> tuple[Fact, ...]:
    """For a probe that got an error answer (5xx, or GraphQL errors in a 200): the error signatures its body
    names, said by `speaker` (the path asked)."""
    if status is not None and status < 500 and "errors" not in body[:2000]:
        return ()
    # A JSON body escapes the quotes and line breaks of the message it carries.
    return signatures(body.replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t"), speaker)


def timed_out(speaker: str, seconds: float) -> tuple[Fact, ...]:
    """For a probe whose request got no answer in time: what a held lock or a hung backend explains."""
    return (Fact(TIMED_OUT, speaker, f"no answer in {seconds:g} s"),)


def of_kind(facts: Iterable[Fact], *kinds: str) -> list[Fact]:
    return [f for f in facts if f.kind in kinds]


def _goes_on(line: str) -> bool:
    """A line that goes on with the exception message above it (not a frame's source line)."""
    return line.startswith(("\t", *_MESSAGE_GOES_ON[2:])) or (line.lstrip().startswith("^") and not is_frame(line))


def is_frame(line: str) -> bool:
    """A stack frame line (Python's `File "...", line N`, Node's `at f (file:1:2)`)."""
    return bool(_FRAME.match(line) or _NODE_FRAME.match(line))


def decisive(lines: list[str], index: int) -> int | None:
    """The line that says what went wrong for the traceback `lines[index]` belongs to: Python's exception line
    after the frames (the last one of a chain), Node's error line before its `at` frames; None when `index` is
    in no stack trace. A line that goes
    on with an exception's message (PostgreSQL's LINE 1, SQLAlchemy's [SQL: ...]) belongs to its traceback."""
    while index > 0 and _goes_on(lines[index]):
        index -= 1
    if _NODE_FRAME.match(lines[index]):  # Node prints the error first, then its `at ...` frames
        while index > 0 and _NODE_FRAME.match(lines[index]):
            index -= 1
        return None if _NODE_FRAME.match(lines[index]) else index
    start = index
    while start >= 0 and not _TRACEBACK.search(lines[start]):
        if not (is_frame(lines[start]) or lines[start].startswith((" ", "\t"))) and start != index:
            return None
        start -= 1
    if start < 0:
        return None
    found = None
    i = start + 1
    while i < len(lines):
        line = lines[i]
        if _TRACEBACK.search(line) or is_frame(line) or line.startswith((" ", "\t")) or not line.strip():
            i += 1
            continue
        if line.startswith(("The above exception", "During handling of the above exception")):
            i += 1
            continue
        found = i
        # A chained exception: the next traceback's own line is the decisive one.
        nxt = i + 1
        while nxt < len(lines) and (not lines[nxt].strip() or lines[nxt].startswith(_MESSAGE_GOES_ON)):
            nxt += 1
        if nxt < len(lines) and lines[nxt].startswith(("The above exception", "During handling")):
            i = nxt + 1
            continue
        break
    return found
