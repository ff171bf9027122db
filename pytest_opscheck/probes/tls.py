"""TLS: the client context every https/wss/SMTP probe uses, and the certificates of the https targets."""

from __future__ import annotations

import functools
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..config import Settings
from .result import Finding, TargetUnreachable, table

DEFAULT_PORTS = {"https": 443, "wss": 443}
# Which target's failure a connection failure to a config key belongs to.
TARGET_OF = {"backend_url": "backend", "frontend_url": "frontend", "websocket_url": "ws"}


def client_context(settings: Settings) -> ssl.SSLContext:
    """The default verifying context, also trusting `ca_file` when one is configured.

    One context per CA file, shared by every probe of the sweep: loading the system's certificates takes
    about 50 ms of CPU, which the concurrent openers would otherwise each pay.
    """
    return _context(str(settings.path(settings.ca_file)) if settings.ca_file else None)


@functools.lru_cache(maxsize=4)
def _context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


@dataclass(frozen=True)
class Endpoint:
    """One TLS endpoint of the configuration."""

    key: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


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


def peer_certificate(endpoint: Endpoint, context: ssl.SSLContext, timeout: float) -> dict[str, object]:
    """The verified certificate of `endpoint`; raises TargetUnreachable when nothing answers on TCP."""
    target = TARGET_OF[endpoint.key]
    try:
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
    except socket.gaierror:
        raise TargetUnreachable(target, f"DNS lookup failed for {endpoint.host}") from None
    except ConnectionRefusedError:
        raise TargetUnreachable(target, f"connection refused by {endpoint}") from None
    except TimeoutError:
        raise TargetUnreachable(target, f"timed out after {timeout:g} s connecting to {endpoint}") from None
    except OSError as exc:
        raise TargetUnreachable(target, f"cannot connect to {endpoint}: {exc.strerror}") from None
    with sock, context.wrap_socket(sock, server_hostname=endpoint.host) as tls:
        return dict(tls.getpeercert() or {})


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
