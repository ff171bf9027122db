"""TLS: every https/wss target presents a certificate the client trusts, valid for long enough."""

from __future__ import annotations

import ssl
import time
from urllib.parse import urlsplit

from ...config import Settings
from ..result import Finding, table
from ..transport.tls import Endpoint, client_context, peer_certificate

DEFAULT_PORTS = {"https": 443, "wss": 443}


def https_endpoints(settings: Settings) -> list[Endpoint]:
    """The https/wss targets of the configuration, one per host and port."""
    endpoints: dict[tuple[str, int], Endpoint] = {}
    for key in ("backend_url", "frontend_url", "websocket_url"):
        url = getattr(settings, key)
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme in DEFAULT_PORTS and parts.hostname:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
            endpoints.setdefault((parts.hostname, port), Endpoint(key, parts.hostname, port))
    return list(endpoints.values())


def _name(pairs: object) -> str:
    """The common name (else the first attribute) of a certificate subject or issuer."""
    flat = [item for rdn in pairs or () for item in rdn] if isinstance(pairs, tuple) else []
    names = dict(flat)
    return str(names.get("commonName") or names.get("organizationName") or "?")


def cert_expiry(settings: Settings, min_days: int) -> Finding:
    """Every https target presents a chain the client trusts, valid for at least `min_days` more days."""
    context = client_context(settings)
    rows = []
    problems = []
    for endpoint in https_endpoints(settings):
        try:
            cert = peer_certificate(endpoint, context, settings.timeout)
        except ssl.SSLCertVerificationError as exc:
            reason = exc.verify_message or exc.reason or "verification failed"
            rows.append([endpoint.key, str(endpoint), "-", "-", "-", f"not trusted: {reason}"])
            problems.append(f"{endpoint.key} {endpoint}: certificate not trusted ({reason})")
            continue
        except (ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            rows.append([endpoint.key, str(endpoint), "-", "-", "-", f"TLS handshake failed: {reason}"])
            problems.append(f"{endpoint.key} {endpoint}: TLS handshake failed ({reason})")
            continue
        not_after = str(cert.get("notAfter", ""))
        days = (ssl.cert_time_to_seconds(not_after) - time.time()) / 86400
        verdict = "ok" if days >= min_days else f"expires in {days:.1f} days (< {min_days})"
        rows.append([endpoint.key, str(endpoint), _name(cert.get("subject")), _name(cert.get("issuer")),
                     not_after, verdict])
        if days < min_days:
            problems.append(f"{endpoint.key} {endpoint}: certificate expires in {days:.1f} days (< {min_days})")
    evidence = {"certificates": table(["target", "address", "subject", "issuer", "not after", "verdict"], rows)}
    if problems:
        return Finding.failed("; ".join(problems), evidence)
    return Finding.passed(evidence)
