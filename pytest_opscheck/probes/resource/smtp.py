"""The SMTP relay: one full session per sweep (connect, EHLO, STARTTLS, AUTH, QUIT), its transcript the
shared reachability result. No mail is sent."""

from __future__ import annotations

from ...config import Settings
from ..result import Finding
from ..transport.deadline import within
from ..transport.smtp import Transcript, end_session, start_session


def open_smtp(settings: Settings) -> Finding:
    """One full session (connect, EHLO, STARTTLS, AUTH, QUIT): the shared reachability result."""
    transcript = Transcript()

    def session() -> Finding:
        client = start_session(settings, transcript)
        end_session(client, transcript)
        return Finding.passed(transcript.evidence())

    # Each step has the probe timeout; the whole session gets two, so a dripping server cannot hold the sweep.
    assert settings.smtp is not None
    where = f"{settings.smtp.host}:{settings.smtp.port}"
    return within(2 * settings.timeout, "smtp", f"for the SMTP session with {where}", session)
