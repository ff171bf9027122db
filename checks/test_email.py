"""Email not sending: the SMTP settings, and a session with the relay that sends nothing."""

from __future__ import annotations

import pytest

from pytest_opscheck.config import Settings
from pytest_opscheck.fixtures.core import open_target
from pytest_opscheck.probes.diagnosis import email as probe
from pytest_opscheck.probes.result import Finding
from pytest_opscheck.targets import Targets
from pytest_opscheck.verdict import expect


@pytest.mark.severity("P3")
@pytest.mark.resolution(
    """Email is not fully configured: password-reset mails cannot go out. Set the relay and the sender in {env_file}:
  SMTP_HOST, SMTP_PORT, SMTP_USER, SMTP_PASSWORD, and EMAILS_FROM_EMAIL (the From address)
then check what the backend sees:
  {compose} exec {backend} python -c "from app.core.config import settings; print(settings.emails_enabled)"
and restart it:  {compose} up -d {backend}"""
)
@pytest.mark.topics("email")
@pytest.mark.automates(
    "docker compose exec * python -c *emails_enabled*", "*check smtp settings*", "verify emails_from_email set",
    "*smtp credentials*",
)
def test_configured(opscheck_config: Settings) -> None:
    if opscheck_config.smtp is None:
        pytest.skip("not configured: smtp")
    expect(probe.configured(opscheck_config))


@pytest.mark.severity("P3")
@pytest.mark.resolution(
    """The mail relay refuses the session (nothing was sent). By cause:
- refused / timed out: wrong SMTP_HOST or SMTP_PORT, or a firewall between the stack and the relay
- TLS failure: STARTTLS on an implicit-TLS port (465: set ssl = true), or a certificate the client
  does not trust (ca_file)
- authentication failed: verify SMTP_USER / SMTP_PASSWORD in {env_file}
Then check the email logs:  {compose} logs {backend} | grep -i -e mail -e smtp"""
)
@pytest.mark.topics("email")
@pytest.mark.automates("test smtp connection")
def test_smtp_session(opscheck_targets: Targets) -> None:
    finding = open_target(opscheck_targets, "smtp")
    assert isinstance(finding, Finding)
    expect(finding)
