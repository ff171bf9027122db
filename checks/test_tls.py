"""TLS: the certificates of the https and wss targets."""

from __future__ import annotations

import pytest

from pytest_opscheck.config import Settings
from pytest_opscheck.probes.diagnosis import tls as probe
from pytest_opscheck.verdict import expect


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """A certificate does not verify or expires within thresholds.cert_days. Renew the certificates
(certbot renew, or your provider's renewal), install the full chain, and reload the proxy:
  {compose} restart proxy
Check what is served:
  openssl s_client -connect <host>:443 -servername <host> </dev/null | openssl x509 -noout -issuer -dates
A private CA: point ca_file at its bundle."""
)
@pytest.mark.topics("tls")
def test_cert_expiry(opscheck_config: Settings) -> None:
    if not probe.https_endpoints(opscheck_config):
        pytest.skip("no https target: backend_url, frontend_url and websocket_url are not https/wss")
    finding = probe.cert_expiry(opscheck_config, opscheck_config.thresholds.cert_days)
    expect(finding)
