"""TLS: the client context every https/wss/SMTP probe uses, and the verified certificate of one endpoint."""

from __future__ import annotations

import functools
import socket
import ssl
from dataclasses import dataclass

from ...config import Settings
from ..result import TargetUnreachable

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
