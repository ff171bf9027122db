"""Redaction at the sinks that do not pass through a record: every log record (whichever logger, whichever
handler shows it: live log under ``log_cli``, caplog, the captured-log sections of ``-rA``, ``--log-file``),
parametrised ids (the ``-v`` line, node ids, and so every report that names a check), and pytest-metadata's
environment (the header under ``-v`` and pytest-html's Environment table).

Logs: a `logging.setLogRecordFactory` wrapper redacts each record as it is made, before any handler or
formatter sees it (message rendered with its arguments, exception and stack text rendered and redacted), so
no handler pytest or a team installs can show the raw text. Ids: pytest's documented
``pytest_make_parametrize_id`` hook hands pytest the redacted id of a parameter that holds a secret. Metadata:
pytest-metadata's documented stash (``config.stash[metadata_key]``) is redacted in place before the header is
written and again, with the secrets learned during the sweep, before the HTML is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import pytest

from .redact import MASK, secret_key

if TYPE_CHECKING:
    from .context import SweepContext

Redact = Callable[[str], str]


# A log record's message is cut here before it is redacted and kept (pytest keeps every record it captures).
LOG_MESSAGE_LIMIT = 64_000


def _bounded(text: str) -> str:
    if len(text) <= LOG_MESSAGE_LIMIT:
        return text
    return f"{text[:LOG_MESSAGE_LIMIT]} [truncated: {len(text) - LOG_MESSAGE_LIMIT} more characters]"


def redact_log_record(record: logging.LogRecord, redact: Redact) -> logging.LogRecord:
    """`record` with its message (arguments filled in), exception text and stack text bounded and redacted."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError, KeyError):  # arguments that do not fit: both shown, redacted
        message = f"{record.msg} {record.args}"
    record.msg, record.args = redact(_bounded(str(message))), ()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(_bounded(record.exc_text))
    if record.stack_info:
        record.stack_info = redact(_bounded(record.stack_info))
    return record


def install_log_redaction(redact: Redact) -> Callable[[], None]:
    """Make every log record redacted as it is created; returns what undoes it."""
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_log_record(previous(*args, **kwargs), redact)

    logging.setLogRecordFactory(factory)

    def restore() -> None:
        if logging.getLogRecordFactory() is factory:
            logging.setLogRecordFactory(previous)

    return restore


def _url_secrets(value: str) -> set[str]:
    """The credential in a URL's userinfo: its password, or a user name that is a token (`https://ghp_…@`)."""
    if "@" not in value or "://" not in value:
        return set()
    try:
        parts = urlsplit(value)
    except ValueError:
        return set()
    if parts.password:
        return {parts.password, unquote(parts.password)}
    if parts.username and len(parts.username) >= 12 and any(c.isdigit() for c in parts.username):
        return {parts.username}
    return set()


def redact_metadata(metadata: MutableMapping[str, Any], redact: Redact) -> set[str]:
    """pytest-metadata's table redacted in place: a secret-named key's value masked whole, every other value
    (a CI `GIT_URL` with a token in its userinfo) through the redactor, nested tables too. Returns the secrets
    found that way, for the redactor to know wherever else they show up."""
    found: set[str] = set()
    for key in list(metadata):
        value = metadata[key]
        if isinstance(value, MutableMapping):
            found |= redact_metadata(value, redact)
            continue
        if isinstance(value, str):
            found |= _url_secrets(value)
        if isinstance(value, str | int) and not isinstance(value, bool) and secret_key(str(key)) and str(value):
            found.add(str(value))
            shown: Any = MASK
        elif isinstance(value, str):
            shown = redact(value)
        elif isinstance(value, list | tuple):
            shown = [redact(v) if isinstance(v, str) else v for v in value]
        else:
            continue
        clean_key = redact(str(key))
        if clean_key != key:
            del metadata[key]
        metadata[clean_key] = shown
    return found


def redact_id(redact: Redact, text: str) -> str:
    """A check id, node id or parameter id with any secret in it masked: call on `nodeid` and `check_id` where a
    record is sealed (the JSON `id`/`nodeid`, the JUnit name and the Prometheus label all come from there)."""
    return redact(text)


def _metadata(config: pytest.Config) -> MutableMapping[str, Any] | None:
    if not config.pluginmanager.hasplugin("metadata"):
        return None
    from pytest_metadata.plugin import metadata_key

    return config.stash.get(metadata_key, None)


class Sinks:
    """The sweep's redactor on the log records, the parametrised ids and pytest-metadata's table."""

    def __init__(self, ctx: SweepContext) -> None:
        self.ctx = ctx
        # At once: the targets are already opening, and their clients log.
        self._restore = install_log_redaction(ctx.redact)

    def _redact_metadata(self, config: pytest.Config) -> None:
        metadata = _metadata(config)
        if metadata is not None:
            self.ctx.redact.add(*redact_metadata(metadata, self.ctx.redact))

    @pytest.hookimpl(optionalhook=True)
    def pytest_metadata(self, metadata: MutableMapping[str, Any], config: pytest.Config) -> None:
        self.ctx.redact.add(*redact_metadata(metadata, self.ctx.redact))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """What the targets opened so far hold is known before the check logs a line (live logs show at once)."""
        from .sweep.learned import learn

        learn(self.ctx)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._redact_metadata(session.config)  # before the header (-v) and pytest-html's Environment table

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._redact_metadata(session.config)  # with the secrets learned during the sweep

    def pytest_make_parametrize_id(self, config: pytest.Config, val: object, argname: str) -> str | None:
        """A parameter that holds a secret is named by its redacted text, never by the secret."""
        if isinstance(val, bytes):
            val = val.decode("utf-8", errors="replace")
        if isinstance(val, str):
            shown = redact_id(self.ctx.redact, val)
            if shown != val:
                return shown
        return None

    def pytest_unconfigure(self) -> None:
        self._restore()
