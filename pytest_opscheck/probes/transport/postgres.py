"""PostgreSQL: a connection string read as Prisma and libpq read it, a read-only session opened within a
deadline, and one line naming why a connection failed (never the password)."""

from __future__ import annotations

import contextlib
import functools
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar
from urllib.parse import unquote, urlsplit

from ..result import TargetUnreachable

T = TypeVar("T")
_URI_SCHEMES = ("postgresql://", "postgres://")
_PLAIN_SCHEMA = re.compile(r"[a-z_][a-z0-9_$]*")


@dataclass(frozen=True)
class Address:
    """Where the database is, without the password."""

    host: str
    port: int | str
    user: str
    dbname: str

    @classmethod
    def from_url(cls, url: str) -> Address:
        parts = urlsplit(url)
        port: int | str
        try:
            port = parts.port or 5432
        except ValueError:  # several hosts, or a port out of range: shown as written
            port = parts.netloc.rsplit("@", 1)[-1].split(":", 1)[-1]
        user = unquote(parts.username or "")
        return cls(parts.hostname or "localhost", port, user, unquote(parts.path.lstrip("/")) or user)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.where}/{self.dbname}"


# (SQLSTATEs, pattern of the message, cause): the first that matches wins. libpq gives no SQLSTATE for a
# failed connection, so the server's message decides there; once connected, the SQLSTATE decides.
_CAUSES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("28P01",), r"password authentication failed|no password supplied|authentication failed",
     "authentication failed for user {user} on {where}"),
    (("28000",), r'no pg_hba\.conf entry|pg_hba\.conf rejects|role "[^"]*" does not exist',
     "authentication failed for user {user} on {where}: no pg_hba.conf rule or no such role"),
    (("3D000",), r'database "[^"]*" does not exist', "database {dbname} does not exist on {where}"),
    ((), r"is not currently accepting connections",
     "database {dbname} on {where} does not accept connections (ALLOW_CONNECTIONS false)"),
    ((), r"too many connections for database",
     "too many connections for database {dbname} on {where} (its CONNECTION LIMIT is reached)"),
    ((), r"too many connections for role",
     "too many connections for user {user} on {where} (the role's CONNECTION LIMIT is reached)"),
    (("53300",), r"too many clients|remaining connection slots|too many connections",
     "too many connections on {where}: max_connections reached"),
    ((), r"shutting down", "server on {where} is shutting down"),
    (("57P03",), r"starting up|not yet accepting connections|in recovery mode",
     "server on {where} is starting up"),
    (("57P01",), r"terminating connection due to administrator command",
     "server on {where} ended the session (shutdown or pg_terminate_backend)"),
    (("57014",), r"statement timeout", "no answer within {timeout} s from {where} (statement_timeout)"),
    ((), r"connection refused", "connection refused by {where}"),
    ((), r"timeout expired|timed out", "timed out after {timeout} s connecting to {where}"),
    ((), r"resolve host|could not translate host name|name or service not known|name resolution|'idna' codec",
     "DNS lookup failed for {host}"),
    ((), r"\bssl\b", "TLS with {where} failed: {detail}"),
)


def classify(message: str, sqlstate: str | None, address: Address, timeout: float) -> str:
    """One line naming why a connection failed, built from the address (never from the URL)."""
    detail = _detail(message)
    for codes, pattern, cause in _CAUSES:
        if (sqlstate and sqlstate in codes) or re.search(pattern, message, re.IGNORECASE):
            return cause.format(
                user=address.user or "(default)", where=address.where, host=address.host,
                dbname=address.dbname, timeout=f"{timeout:g}", detail=detail,
            )
    return f"cannot connect to {address.where}: {detail}"


def _detail(message: str) -> str:
    """The server's or libpq's own words: the first line, after libpq's "connection ... failed:" prefix."""
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    first = first.rsplit(" failed: ", 1)[-1]
    return re.sub(r"^(FATAL|ERROR):\s+", "", first).strip()


def libpq_url(url: str) -> tuple[str, str | None]:
    """`url` as libpq takes it, and Prisma's `schema=` (None when not given).

    Prisma apps add their own query parameters (schema, connection_limit, pool_timeout, pgbouncer,
    socket_timeout, sslaccept, ...), which libpq rejects: every parameter libpq does not know is dropped,
    as Prisma reads the URL; the ones it knows are kept as written. A key=value string is returned as is.
    """
    if not url.startswith(_URI_SCHEMES):
        return url, None
    start = url.index("://") + 3
    slash = url.find("/", start)
    at = url.find("@", start, slash if slash >= 0 else len(url))  # libpq's user info ends at the first "@"
    query = url.find("?", at + 1 if at >= 0 else start)
    if query < 0:
        return url, None
    kept, schema = [], None
    for chunk in url[query + 1 :].split("&"):
        key, _, value = chunk.partition("=")
        key = unquote(key)
        if key == "schema":
            schema = unquote(value) or None
        elif key in _libpq_keywords() or (key == "ssl" and unquote(value) == "true"):  # libpq's JDBC alias
            kept.append(chunk)
    return url[:query] + ("?" + "&".join(kept) if kept else ""), schema


@functools.cache
def _libpq_keywords() -> frozenset[str]:
    """The connection keywords the loaded libpq knows (PQconndefaults)."""
    from psycopg import pq

    return frozenset(option.keyword.decode() for option in pq.Conninfo.get_defaults())


def session_options(user_options: str | None, schema: str | None, timeout: float) -> str:
    """libpq's `options` of the probe's session: the schema's search_path, then the user's own options (which
    may set search_path themselves), then read-only and the statement timeout, last so that nothing lifts them.
    """
    parts = [f"-c search_path={_escaped(search_path(schema))}"] if schema else []
    if user_options and user_options.strip():
        parts.append(user_options.strip())
    parts.append(f"-c default_transaction_read_only=on -c statement_timeout={max(1, round(timeout * 1000))}")
    return " ".join(parts)


def search_path(schema: str) -> str:
    """`schema` as a search_path entry: quoted unless a plain lower-case name (as Prisma sets it)."""
    return schema if _PLAIN_SCHEMA.fullmatch(schema) else '"' + schema.replace('"', '""') + '"'


def _escaped(value: str) -> str:
    """A value inside libpq's `options`, which the server splits on whitespace; a backslash escapes."""
    return re.sub(r"([\\\s])", r"\\\1", value)


class Connected(NamedTuple):
    """An open read-only session that answered `SELECT 1`, and where it is."""

    connection: Any
    address: Address
    seconds: float
    schema: str | None


def connect(url: str, timeout: float) -> Connected:
    """Open a read-only session and run `SELECT 1`, all within `timeout` (DNS, TCP, TLS, auth, query).

    psycopg's connect_timeout is per address tried and at least 2 s; the deadline here bounds the total.
    """
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    address = Address.from_url(url)
    password = unquote(urlsplit(url).password or "")
    conninfo, schema = libpq_url(url)

    def open_and_ask() -> Any:
        connection = psycopg.connect(
            conninfo,
            autocommit=True,
            connect_timeout=max(1, math.ceil(timeout)),
            options=session_options(str(conninfo_to_dict(conninfo).get("options") or ""), schema, timeout),
            application_name="opscheck",
        )
        try:
            connection.execute("SELECT 1").fetchone()
        except psycopg.Error as exc:
            connection.close()
            raise _FirstQueryFailed(exc) from None
        return connection

    started = time.monotonic()
    try:
        connection = _within(timeout, open_and_ask, lambda late: late.close())
    except TimeoutError:
        raise TargetUnreachable("db", f"timed out after {timeout:g} s connecting to {address.where}") from None
    except _FirstQueryFailed as failed:
        cause = classify(str(failed.error), failed.error.sqlstate, address, timeout)
        cause = f"connected to {address} but SELECT 1 failed: {cause}"
        raise TargetUnreachable("db", _scrub(cause, password)) from None
    except Exception as exc:  # noqa: BLE001 - psycopg's errors, and what a malformed host makes socket raise
        cause = classify(str(exc), getattr(exc, "sqlstate", None), address, timeout)
        raise TargetUnreachable("db", _scrub(cause, password)) from None
    return Connected(connection, address, time.monotonic() - started, schema)


class _FirstQueryFailed(Exception):
    """Connected, but the first query failed; carries psycopg's error."""

    def __init__(self, error: Any) -> None:
        super().__init__(str(error))
        self.error = error


def _within(seconds: float, call: Callable[[], T], discard: Callable[[T], None]) -> T:
    """`call()`'s result, or TimeoutError after `seconds`; a result that comes later is `discard`ed."""
    lock = threading.Lock()
    done = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            value = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread as is
            with lock:
                box["error"] = exc
        else:
            with lock:
                abandoned = "abandoned" in box
                box["value"] = value
            if abandoned:
                with contextlib.suppress(Exception):  # nobody waits for it any more
                    discard(value)
        finally:
            done.set()

    threading.Thread(target=run, name="opscheck-db-connect", daemon=True).start()
    done.wait(seconds)
    with lock:
        if "value" not in box and "error" not in box:
            box["abandoned"] = True
            raise TimeoutError
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _scrub(text: str, password: str) -> str:
    return text.replace(password, "***") if password else text
