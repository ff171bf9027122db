"""HTTP over httpx: one client per target with the probe timeout in all on every exchange (its redirects
included), that never follows a redirect off the allowed hosts nor down from https to plain http, never
carries a credential to another origin, decodes bodies itself under one cap across every content-encoding
layer, and the `Answer` each exchange gives.

The request model of credentials: a `Credential` (token headers, session cookies, a CSRF token) is bound to
the origins it was obtained for, and `Credential.carried(url, method)` is the one place that decides what a
request to a URL may carry; every hop of every exchange asks it. httpx's own cookie jar stores nothing (it
ignores ports), so no cookie travels unless a credential carries it."""

from __future__ import annotations

import dataclasses
import json
import ssl
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urljoin, urlsplit

from .. import facts
from ..result import TargetUnreachable
from .deadline import within

BODY_LIMIT = 2_000_000
# Every content-encoding layer together may inflate this much, whatever the body keeps (a gzip, gzip bomb).
INFLATE_LIMIT = 4 * BODY_LIMIT
INFLATE_STEP = 65_536
MAX_ENCODINGS = 3
ACCEPT_ENCODING = "gzip, deflate"
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
# Headers that carry a credential: never sent to another origin than the one they were meant for.
CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie")
EXCERPT = 600
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
# What a web opener imports before it starts: httpx loads httpcore only with its first client, which would
# otherwise count against the opener's timeout.
CLIENT_LIBRARIES = ("httpx", "httpcore")

Origin = tuple[str, str, int]
# Methods that change nothing: a CSRF token rides only on the others.
SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


def origin_of(url: str) -> Origin:
    """(scheme, host, port) of `url`, the port made explicit."""
    parts = urlsplit(url)
    default = 443 if parts.scheme in ("https", "wss") else 80
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.scheme, (parts.hostname or "").lower(), port or default


def http_origin(url: str) -> Origin:
    """The origin of `url` with ws/wss read as http/https: a WebSocket shares its page's origin."""
    scheme, host, port = origin_of(url)
    return {"ws": "http", "wss": "https"}.get(scheme, scheme), host, port


@dataclass(frozen=True)
class Credential:
    """What proves the smoke account to a backend, bound to the origins (scheme, host, port) it belongs to.

    `headers`: a token as `Authorization: <scheme> <token>` or in a header of its own; `cookies`: a session (and a
    CSRF cookie); `csrf`: the header and value sent back on unsafe methods. Obtained over https (`secure`), it is
    never sent over http or ws. Every value in it is a secret (`secrets`)."""

    origins: frozenset[Origin]
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    cookies: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    csrf: tuple[str, str] | None = field(default=None, repr=False)
    secure: bool = False

    def admits(self, url: str) -> bool:
        """Whether a request to `url` may carry this credential: one of its origins, and not in clear text when it
        was obtained over TLS."""
        origin = http_origin(url)
        if self.secure and origin[0] != "https":
            return False
        return origin in self.origins

    def carried(self, url: str, method: str = "GET") -> dict[str, str]:
        """The headers a request of `method` to `url` carries: the credential's, or none at all."""
        if not self.admits(url):
            return {}
        out = dict(self.headers)
        if self.cookies:
            out["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies)
        if self.csrf is not None and method.upper() not in SAFE_METHODS:
            out[self.csrf[0]] = self.csrf[1]
        return out

    def with_cookies(self, cookies: Iterable[tuple[str, str]]) -> Credential:
        """This credential with `cookies` set (a later Set-Cookie of a name replaces it; an empty value drops it)."""
        jar = dict(self.cookies)
        for name, value in cookies:
            if value:
                jar[name] = value
            else:
                jar.pop(name, None)
        return dataclasses.replace(self, cookies=tuple(jar.items()))

    def also(self, url: str) -> Credential:
        """This credential also bound to `url`'s origin (a WebSocket the config says takes it)."""
        return dataclasses.replace(self, origins=self.origins | {http_origin(url)})

    @property
    def secrets(self) -> tuple[str, ...]:
        values = [v for _, v in self.headers] + [v for _, v in self.cookies] + ([self.csrf[1]] if self.csrf else [])
        found = set(values)
        for _, value in self.headers:  # the bare token of "<scheme> <token>" too (never the scheme's word)
            token = value.partition(" ")[2]
            if token:
                found.add(token)
        return tuple(v for v in found if v)


def bound_to(*urls: str | None, secure: bool | None = None) -> Credential:
    """An empty credential bound to the origins of `urls`; `secure` when obtained over https (default: the
    first URL's scheme)."""
    given = [u for u in urls if u]
    tls = http_origin(given[0])[0] == "https" if secure is None and given else bool(secure)
    return Credential(frozenset(http_origin(u) for u in given), secure=tls)


def set_cookies(lines: Iterable[str]) -> list[tuple[str, str]]:
    """(name, value) of each Set-Cookie line (an expired or emptied cookie has the value "")."""
    found: list[tuple[str, str]] = []
    for line in lines:
        cookie: SimpleCookie = SimpleCookie()
        try:
            cookie.load(line)
        except CookieError:
            continue
        for name, morsel in cookie.items():
            expired = morsel["max-age"] in ("0", "-1") or "1970" in morsel["expires"]
            found.append((name, "" if expired else morsel.value))
    return found


def _no_cookies() -> CookieJar:
    """A cookie jar that keeps nothing: cookies travel only with a `Credential`."""
    return CookieJar(DefaultCookiePolicy(allowed_domains=[]))


def address(url: str) -> str:
    _, host, port = origin_of(url)
    return f"{host}:{port}"


def shown(url: str) -> str:
    """`url` as a cause may show it: no userinfo, no fragment, its query withheld (a redirect's `Location`
    is the target's choice and may carry a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}" + ("?…" if parts.query else "")


class InsecureRedirect(TargetUnreachable):
    """An https exchange redirected down to plain http: a SECURITY failure, never followed."""


def classify(exc: Exception, url: str, timeout: float) -> str:
    """One line naming why an HTTP exchange failed: refused, timed out, DNS, TLS, closed. (By the exception's
    name: httpx's, or httpcore's own when a test runner has imported httpcore again under httpx.)"""
    text = f"{exc} {exc.__cause__ or ''}".lower()
    where = address(url)
    kind = type(exc).__name__
    if kind == "ConnectTimeout":
        return f"timed out after {timeout:g} s connecting to {where}"
    if kind.endswith("Timeout") or kind == "TimeoutException":
        return f"timed out after {timeout:g} s waiting for {shown(url)}"
    if "certificate_verify_failed" in text or "certificate verify failed" in text:
        return f"TLS certificate of {where} not trusted"
    if "ssl" in text or "tls" in text:
        return f"TLS handshake with {where} failed"
    if "refused" in text:
        return f"connection refused by {where}"
    if "name or service not known" in text or "name resolution" in text or "nodename nor servname" in text:
        return f"DNS lookup failed for {urlsplit(url).hostname}"
    if kind == "RemoteProtocolError":
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
    note: str = ""  # why the body is not all there or not decoded, when it is not
    cookies: tuple[str, ...] = field(default=(), repr=False)  # its Set-Cookie lines (values are secrets)

    @property
    def raw_headers(self) -> list[tuple[str, str]]:
        """The headers as pairs, each Set-Cookie line a pair of its own (`headers` joins repeated names)."""
        pairs = [(k, v) for k, v in self.headers.items() if k != "set-cookie"]
        return pairs + [("set-cookie", line) for line in self.cookies]

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
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
            return None

    @property
    def is_html(self) -> bool:
        head = self.body[:512].lstrip().lower()
        return self.content_type == "text/html" or head.startswith((b"<!doctype html", b"<html"))

    @property
    def path(self) -> str:
        """The path asked for, with its query; after a redirect, the query is withheld (the target's choice)."""
        parts = urlsplit(self.url)
        query = ("?…" if self.redirects else f"?{parts.query}") if parts.query else ""
        return parts.path + query

    def line(self) -> str:
        """`GET /path → 200 OK in 12 ms (text/html)`."""
        kind = f" ({self.content_type})" if self.content_type else ""
        hops = f" after {len(self.redirects)} redirect(s)" if self.redirects else ""
        return f"{self.method} {self.path} → {self.status} {self.reason} in {ms(self.seconds)}{hops}{kind}"

    def excerpt(self) -> str:
        text = self.text.strip()
        cut = f" ({self.note})" if self.note else f" (body truncated at {BODY_LIMIT} bytes)" if self.truncated else ""
        return (text[:EXCERPT] + (" …" if len(text) > EXCERPT else "") if text else "(empty body)") + cut


class BodyReader:
    """A body decoded as it arrives, through each of its content-encoding layers, under caps: at most
    `limit` bytes kept and `INFLATE_LIMIT` bytes inflated across all layers together, `INFLATE_STEP` at a
    time, so a bomb costs neither memory nor much time, and a reader told to stop (`cancel`) stops at once.
    An encoding it does not know, or more than `MAX_ENCODINGS` layers, leaves the body as it came."""

    def __init__(self, encoding: str, limit: int = BODY_LIMIT, cancel: threading.Event | None = None) -> None:
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip().lower() not in ("", "identity")]
        self.limit = limit
        self.cancel = cancel or threading.Event()
        self.body = bytearray()
        self.inflated = 0
        self.truncated = False
        self.note = ""
        unknown = [c for c in codings if c not in _WBITS]
        if len(codings) > MAX_ENCODINGS:
            self.note, codings = f"{len(codings)} content-encoding layers, not decoded", []
        elif unknown:
            self.note, codings = f"content-encoding {unknown[0]} not decoded", []
        # The last encoding applied is the first undone.
        self.kinds = list(reversed(codings))
        self.layers = [zlib.decompressobj(_WBITS[kind]) for kind in self.kinds]

    @property
    def done(self) -> bool:
        return self.truncated or self.cancel.is_set()

    def feed(self, data: bytes) -> None:
        try:
            self._push(0, data)
        except zlib.error:
            self.truncated = True
            self.note = f"body does not decode as {', '.join(reversed(self.kinds))}: cut there"

    def _push(self, level: int, data: bytes) -> None:
        if level == len(self.layers):
            room = self.limit - len(self.body)
            self.body += data[:room]
            if len(data) > room:
                self.truncated = True
            return
        layer = self.layers[level]
        while not self.done:
            try:
                piece = layer.decompress(data, INFLATE_STEP)
            except zlib.error:
                if self.kinds[level] != "deflate" or self.inflated or layer.unused_data:
                    raise
                # "deflate" as many servers send it: raw deflate, without the zlib wrapper.
                layer = self.layers[level] = zlib.decompressobj(-zlib.MAX_WBITS)
                self.kinds[level] = "raw deflate"
                continue
            stuck = not piece and layer.unconsumed_tail == data
            data = layer.unconsumed_tail
            self.inflated += len(piece)
            if self.inflated > INFLATE_LIMIT:
                self.truncated = True
                self.note = (f"content-encoding {', '.join(reversed(self.kinds))} inflates past "
                             f"{INFLATE_LIMIT} bytes: cut there")
                return
            if piece:
                self._push(level + 1, piece)
            elif not data or stuck:
                return


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
            cookies=_no_cookies(),
            headers={"User-Agent": "pytest-opscheck", "Accept-Encoding": ACCEPT_ENCODING},
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

    def request(
        self, method: str, path: str, *, follow: bool = True, credential: Credential | None = None, **kwargs: Any
    ) -> Answer:
        """One exchange and, unless `follow` is false, its redirects on the allowed hosts, all within one
        probe timeout. A redirect from https down to plain http raises `InsecureRedirect` (a SECURITY
        failure, not followed); one to another allowed origin goes there without the credential headers,
        and not at all when it would carry the request's body (a login's password) there. `credential` rides on
        each hop only as far as `Credential.carried` lets it."""
        url = self.url(path)
        hops: list[str] = []
        started = time.perf_counter()
        marks: dict[str, float] = {}
        cookies: list[str] = []
        while True:
            sent = kwargs
            if credential is not None:
                given = kwargs.get("headers") or {}
                sent = {**kwargs, "headers": {**given, **credential.carried(url, method)}}
            answer = self._bounded(method, url, marks, started, **sent)
            if origin_of(answer.url) == origin_of(self.url(path)):
                cookies += answer.cookies
            location = answer.headers.get("location")
            if not follow or answer.status not in REDIRECTS or not location or len(hops) >= MAX_REDIRECTS:
                break
            following = urljoin(url, location)
            here, there = origin_of(url), origin_of(following)
            if here[0] == "https" and there[0] == "http":
                raise InsecureRedirect(
                    self.name, f"SECURITY: {method} {shown(url)} redirects ({answer.status}) down to plain http, "
                    f"{shown(following)}: not followed, nothing sent in clear text")
            if there not in self.allowed:
                # Never followed, so no credential or cookie goes there; the answer says where it pointed.
                reason = f"{answer.reason} to another host, {shown(following)}: not followed"
                answer = dataclasses.replace(answer, reason=reason)
                break
            keeps_body = answer.status in (307, 308) and any(k in kwargs for k in ("data", "json", "content", "files"))
            if there != here and keeps_body:
                reason = f"{answer.reason} to another origin, {shown(following)}: not followed with the request's body"
                answer = dataclasses.replace(answer, reason=reason)
                break
            if there != here:
                kwargs = {**kwargs, "headers": _without_credentials(kwargs.get("headers"))}
            hops.append(url)
            url = following
            if answer.status == 303 or (answer.status in (301, 302) and method == "POST"):
                method = "GET"
                kwargs = {k: v for k, v in kwargs.items() if k == "headers"}
        return Answer(
            answer.method, answer.url, answer.status, answer.reason, answer.headers, answer.body,
            time.perf_counter() - started, _connect(marks), answer.first_byte, tuple(hops), answer.truncated,
            answer.note, tuple(cookies),
        )

    def _bounded(self, method: str, url: str, marks: dict[str, float], started: float, **kwargs: Any) -> Answer:
        """`_once` within what is left of the probe timeout: a server that drips bytes, or redirects again and
        again, cannot hold the sweep; the abandoned exchange stops reading at once."""
        client = self.client
        cancel = threading.Event()

        def abandon() -> None:
            cancel.set()
            client.close()

        left = self.timeout - (time.perf_counter() - started)
        what = f"waiting for {shown(url)}"
        # No answer in time: what a held lock or a hung backend explains (a typed fact for attribution).
        timed_out = TargetUnreachable(self.name, f"timed out after {self.timeout:g} s {what}",
                                      facts=facts.timed_out(f"{self.name} {shown(url)}", self.timeout))
        try:
            if left <= 0:
                raise timed_out
            return within(left, self.name, what,
                          lambda: self._once(client, method, url, marks, started, cancel, **kwargs), abandon)
        except TargetUnreachable as exc:
            cancel.set()
            self.client = self._new_client()
            if exc.cause == f"timed out after {left:g} s {what}":  # the deadline: said with the probe timeout
                raise timed_out from None
            raise

    def _once(
        self, client: Any, method: str, url: str, marks: dict[str, float], started: float,
        cancel: threading.Event, **kwargs: Any,
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
                reader = BodyReader(response.headers.get("content-encoding", ""), BODY_LIMIT, cancel)
                # Raw bytes, decoded here under the caps: httpx would inflate a whole chunk at once.
                for chunk in response.iter_raw():
                    reader.feed(chunk)
                    if reader.done:
                        break
        except Exception as exc:  # httpx's errors, and httpcore's that escaped its mapping
            if not isinstance(exc, httpx.HTTPError) and not type(exc).__module__.startswith("httpcore"):
                raise
            cause = classify(exc, url, self.timeout)
            said = facts.timed_out(f"{self.name} {shown(url)}", self.timeout) if isinstance(
                exc, httpx.ReadTimeout) else facts.down(url, cause)  # refused, reset: the process is not there
            raise TargetUnreachable(self.name, cause, facts=said) from None
        return Answer(
            method, url, response.status_code, response.reason_phrase,
            {k.lower(): v for k, v in response.headers.items()}, bytes(reader.body),
            time.perf_counter() - started, first_byte=marks.get("first_byte"), truncated=reader.truncated,
            note=reader.note, cookies=tuple(response.headers.get_list("set-cookie")),
        )

    def close(self) -> None:
        self.client.close()


def _without_credentials(headers: Any) -> dict[str, str]:
    """`headers` less those that carry a credential (for a hop to another origin)."""
    return {k: v for k, v in dict(headers or {}).items() if k.lower() not in CREDENTIAL_HEADERS}


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
