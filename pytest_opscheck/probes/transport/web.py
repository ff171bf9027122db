"""HTTP over httpx: one client per target with the probe timeout in all on every exchange, that never
follows a redirect off the allowed hosts, and the `Answer` each exchange gives."""

from __future__ import annotations

import dataclasses
import json
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from ..result import TargetUnreachable
from .deadline import within

BODY_LIMIT = 2_000_000
EXCERPT = 600
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
# What a web opener imports before it starts: httpx loads httpcore only with its first client, which would
# otherwise count against the opener's timeout.
CLIENT_LIBRARIES = ("httpx", "httpcore")

Origin = tuple[str, str, int]


def origin_of(url: str) -> Origin:
    """(scheme, host, port) of `url`, the port made explicit."""
    parts = urlsplit(url)
    default = 443 if parts.scheme in ("https", "wss") else 80
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def address(url: str) -> str:
    _, host, port = origin_of(url)
    return f"{host}:{port}"


def classify(exc: Exception, url: str, timeout: float) -> str:
    """One line naming why an HTTP exchange failed: refused, timed out, DNS, TLS, closed."""
    import httpx

    text = f"{exc} {exc.__cause__ or ''}".lower()
    where = address(url)
    if isinstance(exc, httpx.ConnectTimeout):
        return f"timed out after {timeout:g} s connecting to {where}"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g} s waiting for {url}"
    if "certificate_verify_failed" in text or "certificate verify failed" in text:
        return f"TLS certificate of {where} not trusted"
    if "ssl" in text or "tls" in text:
        return f"TLS handshake with {where} failed"
    if "refused" in text:
        return f"connection refused by {where}"
    if "name or service not known" in text or "name resolution" in text or "nodename nor servname" in text:
        return f"DNS lookup failed for {urlsplit(url).hostname}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{where} closed the connection without an HTTP answer"
    return f"cannot reach {where}: {type(exc).__name__}"


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, headers (lower-case names), body (capped), timings in seconds."""

    method: str
    url: str
    status: int
    reason: str
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    seconds: float = 0.0
    connect: float | None = None
    first_byte: float | None = None
    redirects: tuple[str, ...] = ()
    truncated: bool = False

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body as JSON; None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def is_html(self) -> bool:
        head = self.body[:512].lstrip().lower()
        return self.content_type == "text/html" or head.startswith((b"<!doctype html", b"<html"))

    @property
    def path(self) -> str:
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def line(self) -> str:
        """`GET /path → 200 OK in 12 ms (text/html)`."""
        kind = f" ({self.content_type})" if self.content_type else ""
        hops = f" after {len(self.redirects)} redirect(s)" if self.redirects else ""
        return f"{self.method} {self.path} → {self.status} {self.reason} in {ms(self.seconds)}{hops}{kind}"

    def excerpt(self) -> str:
        text = self.text.strip()
        cut = f" (body truncated at {BODY_LIMIT} bytes)" if self.truncated else ""
        return (text[:EXCERPT] + (" …" if len(text) > EXCERPT else "") if text else "(empty body)") + cut


def ms(seconds: float | None, missing: str = "-") -> str:
    return missing if seconds is None else f"{seconds * 1000:.0f} ms"


class WebClient:
    """An httpx client (`client`) for one target, each exchange bounded by `timeout` in all.

    `get`/`request` follow redirects only while they stay on the `allowed` origins; an off-host redirect
    is returned as it is. A network failure raises `TargetUnreachable(name, cause)`.
    """

    def __init__(
        self, name: str, base_url: str, timeout: float, allowed: set[Origin], context: ssl.SSLContext
    ) -> None:
        self.name = name
        self.base_url = base_url
        self.timeout = timeout
        self.allowed = allowed
        self._context = context
        self.client = self._new_client()

    def _new_client(self) -> Any:
        import httpx

        return httpx.Client(
            timeout=self.timeout,
            follow_redirects=False,
            verify=self._context,
            trust_env=False,
            headers={"User-Agent": "pytest-opscheck"},
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, {self.base_url})"

    def url(self, path: str) -> str:
        """`path` on this target (an absolute URL is kept as it is)."""
        if urlsplit(path).scheme:
            return path
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def get(self, path: str, **kwargs: Any) -> Answer:
        return self.request("GET", path, **kwargs)

    def request(self, method: str, path: str, *, follow: bool = True, **kwargs: Any) -> Answer:
        """One exchange (and its on-host redirects unless `follow` is false)."""
        url = self.url(path)
        hops: list[str] = []
        started = time.perf_counter()
        marks: dict[str, float] = {}
        while True:
            answer = self._bounded(method, url, marks, started, **kwargs)
            location = answer.headers.get("location")
            if not follow or answer.status not in REDIRECTS or not location or len(hops) >= MAX_REDIRECTS:
                break
            following = urljoin(url, location)
            if origin_of(following) not in self.allowed:
                # Never followed, so no credential or cookie goes there; the answer says where it pointed.
                reason = f"{answer.reason} to another host, {following}: not followed"
                answer = dataclasses.replace(answer, reason=reason)
                break
            hops.append(url)
            url = following
            if answer.status == 303 or (answer.status in (301, 302) and method == "POST"):
                method = "GET"
                kwargs = {k: v for k, v in kwargs.items() if k == "headers"}
        return Answer(
            answer.method, answer.url, answer.status, answer.reason, answer.headers, answer.body,
            time.perf_counter() - started, _connect(marks), answer.first_byte, tuple(hops), answer.truncated,
        )

    def _bounded(self, method: str, url: str, marks: dict[str, float], started: float, **kwargs: Any) -> Answer:
        """`_once` within the probe timeout in all: a server that drips bytes cannot hold the sweep."""
        client = self.client

        def abandon() -> None:
            client.close()

        try:
            return within(self.timeout, self.name, f"waiting for {url}",
                          lambda: self._once(client, method, url, marks, started, **kwargs), abandon)
        except TargetUnreachable:
            self.client = self._new_client()
            raise

    def _once(
        self, client: Any, method: str, url: str, marks: dict[str, float], started: float, **kwargs: Any
    ) -> Answer:
        import httpx

        def trace(event: str, info: Any) -> None:
            now = time.perf_counter() - started
            if event.startswith("connection."):
                marks.setdefault(event, now)
            elif event.endswith("receive_response_headers.complete"):
                marks["first_byte"] = now

        try:
            with client.stream(method, url, extensions={"trace": trace}, **kwargs) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) >= BODY_LIMIT:
                        break
        except httpx.HTTPError as exc:
            raise TargetUnreachable(self.name, classify(exc, url, self.timeout)) from None
        return Answer(
            method, url, response.status_code, response.reason_phrase,
            {k.lower(): v for k, v in response.headers.items()}, bytes(body[:BODY_LIMIT]),
            time.perf_counter() - started, first_byte=marks.get("first_byte"), truncated=len(body) >= BODY_LIMIT,
        )

    def close(self) -> None:
        self.client.close()


def _connect(marks: dict[str, float]) -> float | None:
    """Seconds spent opening the connection (TCP and TLS); None when a kept-alive one was reused."""
    spent = 0.0
    found = False
    for step in ("connect_tcp", "start_tls"):
        begin, end = marks.get(f"connection.{step}.started"), marks.get(f"connection.{step}.complete")
        if begin is not None and end is not None:
            spent += end - begin
            found = True
    return spent if found else None
