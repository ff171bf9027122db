"""SMTP sessions: connect, EHLO, STARTTLS (when configured), AUTH (when a user is set), QUIT. No mail is sent.

Refused, timed out, TLS failure and bad credentials are told apart; the password never appears."""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from ...config import Settings, Smtp
from ..result import TargetUnreachable, table
from .tls import client_context

LOCAL_NAME = "opscheck.localhost"


@dataclass
class Transcript:
    """The steps of one SMTP session: step, server's answer, time."""

    rows: list[list[str]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def step(self, name: str, code: int, message: bytes | str) -> None:
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        first = text.splitlines()[0] if text else ""
        self.rows.append([name, f"{code} {first}"[:120], f"{(time.perf_counter() - self.started) * 1000:.0f} ms"])

    def evidence(self) -> dict[str, str]:
        return {"session": table(["step", "answer", "at"], self.rows)} if self.rows else {}


# What a server may send in one session before it is cut off: a greeting, EHLO's list and STARTTLS/AUTH
# answers are a few KB; a reply that never ends (a line a second, each under the socket's timeout) is not kept.
SESSION_BYTES = 1 << 20


# What the cap says; smtplib wraps any error of its reply stream in SMTPServerDisconnected, keeping the text.
CUT_OFF = f"the server sent more than {SESSION_BYTES >> 20} MiB without ending its reply: cut off"


class _Capped:
    """The session's reply stream, read line by line as smtplib reads it, cut off past `SESSION_BYTES`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.read = 0

    def readline(self, size: int = -1) -> bytes:
        line: bytes = self.inner.readline(size)
        self.read += len(line)
        if self.read > SESSION_BYTES:
            raise smtplib.SMTPServerDisconnected(CUT_OFF)
        return line

    def close(self) -> None:
        self.inner.close()


class _Bounded:
    """smtplib's client with its reply stream capped (`getreply` is where smtplib opens it, also after STARTTLS)."""

    sock: Any
    file: Any

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None and self.sock is not None:
            self.file = _Capped(self.sock.makefile("rb"))
        return super().getreply()  # type: ignore[misc,no-any-return]


class BoundedSMTP(_Bounded, smtplib.SMTP):
    pass


class BoundedSMTP_SSL(_Bounded, smtplib.SMTP_SSL):
    pass


def start_session(settings: Settings, transcript: Transcript | None = None) -> smtplib.SMTP:
    """A greeted (and, as configured, encrypted and authenticated) SMTP session; TargetUnreachable if not."""
    config = settings.smtp
    assert config is not None and config.host is not None
    transcript = transcript if transcript is not None else Transcript()
    where = f"{config.host}:{config.port}"
    context = client_context(settings)
    stage = "connect"
    client: smtplib.SMTP | None = None
    try:
        if config.ssl:
            client = BoundedSMTP_SSL(config.host, config.port, local_hostname=LOCAL_NAME, timeout=settings.timeout,
                                     context=context)
        else:
            client = BoundedSMTP(config.host, config.port, local_hostname=LOCAL_NAME, timeout=settings.timeout)
        transcript.step("connect" + (" (implicit TLS)" if config.ssl else ""), 220, "greeting received")
        stage = "EHLO"
        code, message = client.ehlo()
        transcript.step("EHLO", code, message)
        if code != 250:
            raise TargetUnreachable("smtp", f"{where} refused EHLO: {code}", transcript.evidence())
        if config.starttls:
            stage = "STARTTLS"
            if not client.has_extn("starttls"):
                raise TargetUnreachable("smtp", f"{where} does not offer STARTTLS", transcript.evidence())
            code, message = client.starttls(context=context)
            transcript.step("STARTTLS", code, message)
            code, message = client.ehlo()
            transcript.step("EHLO", code, message)
        if config.user:
            stage = "AUTH"
            if not client.has_extn("auth"):
                hint = " (offered only after STARTTLS? set starttls = true)" if not config.starttls else ""
                raise TargetUnreachable("smtp", f"{where} offers no AUTH{hint}", transcript.evidence())
            code, message = client.login(config.user, config.password or "")
            transcript.step(f"AUTH as {config.user}", code, message)
    except TargetUnreachable:
        _abandon(client)
        raise
    except Exception as exc:  # noqa: BLE001 - every failure is named by `classify`
        _abandon(client)
        raise TargetUnreachable("smtp", classify(exc, config, stage, settings.timeout), transcript.evidence()) from None
    return client


def classify(exc: Exception, config: Smtp, stage: str, timeout: float) -> str:
    """One line naming why the session failed at `stage`."""
    where = f"{config.host}:{config.port}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"authentication failed for SMTP user {config.user} on {where} ({exc.smtp_code})"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS failure at {stage} with {where}: certificate not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failure at {stage} with {where}: {exc.reason or type(exc).__name__}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}"
    if isinstance(exc, TimeoutError) or (isinstance(exc, smtplib.SMTPServerDisconnected) and "timed out" in str(exc)):
        waiting = "connecting to or waiting for the greeting of" if stage == "connect" else f"at {stage} with"
        return f"timed out after {timeout:g} s {waiting} {where}"
    if isinstance(exc, socket.gaierror):
        return f"DNS lookup failed for {config.host}"
    if isinstance(exc, smtplib.SMTPServerDisconnected) and CUT_OFF in str(exc):
        return f"{where} at {stage}: {CUT_OFF}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"{where} closed the connection at {stage}"
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{where} refused {stage}: {exc.smtp_code} {text.splitlines()[0][:100] if text else ''}".rstrip()
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {exc.strerror or type(exc).__name__}"
    return f"SMTP session with {where} failed at {stage}: {type(exc).__name__}"


def _abandon(client: smtplib.SMTP | None) -> None:
    if client is not None:
        client.close()


def end_session(client: smtplib.SMTP, transcript: Transcript | None = None) -> None:
    """QUIT politely; a server already gone is fine."""
    try:
        code, message = client.quit()
        if transcript is not None:
            transcript.step("QUIT", code, message)
    except (smtplib.SMTPException, OSError):
        client.close()
