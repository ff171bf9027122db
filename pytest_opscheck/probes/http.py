"""HTTP probes: the backend (health, memory, API errors and latency, metrics) and the frontend (root,
SPA deep links, assets), over one httpx client per target that never follows a redirect off the
configured hosts."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from ..config import Settings
from ..targets import opener
from .deadline import within
from .result import Evidence, Finding, TargetUnreachable, table
from .tls import client_context

BODY_LIMIT = 2_000_000
EXCERPT = 600
MAX_REDIRECTS = 5
HEALTHY = {"ok", "healthy", "up", "pass", "passed", "passing", "green"}
REDIRECTS = (301, 302, 303, 307, 308)
# What a web opener imports before it starts: httpx loads httpcore only with its first client, which would
# otherwise count against the opener's timeout.
CLIENT_LIBRARIES = ("httpx", "httpcore")


def origin_of(url: str) -> tuple[str, str, int]:
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


class Site:
    """One web target (backend or frontend): an httpx client with the probe timeout, and its first answer.

    `get`/`request` follow redirects only while they stay on the configured hosts; an off-host redirect
    is returned as it is. A network failure raises `TargetUnreachable(name, cause)`.
    """

    def __init__(self, name: str, base_url: str, settings: Settings) -> None:

        self.name = name
        self.base_url = base_url
        self.timeout = settings.timeout
        self.allowed = {origin_of(u) for u in (settings.backend_url, settings.frontend_url, base_url) if u}
        self._settings = settings
        self.client = self._new_client()
        self.first: Answer | None = None
        self._memo: dict[str, Answer | str] = {}

    def _new_client(self) -> Any:
        import httpx

        return httpx.Client(
            timeout=self.timeout,
            follow_redirects=False,
            verify=client_context(self._settings),
            trust_env=False,
            headers={"User-Agent": "pytest-opscheck"},
        )

    def __repr__(self) -> str:
        return f"Site({self.name}, {self.base_url})"

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

    def sample(self, path: str) -> Answer | str:
        """GET `path` once per sweep (API checks share it): the answer, or why there was none."""
        if path not in self._memo:
            try:
                self._memo[path] = self.get(path, headers={"Connection": "close"})
            except TargetUnreachable as exc:
                self._memo[path] = exc.cause
        return self._memo[path]

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


def open_site(name: str, base_url: str, path: str, settings: Settings) -> Site:
    """A `Site` whose first answer (GET `path`) is already in; TargetUnreachable when none comes."""
    site = Site(name, base_url, settings)
    try:
        # No kept-alive socket is left behind by the opener: a sweep may end before it returns.
        site.first = site.get(path, headers={"Connection": "close"})
    except TargetUnreachable:
        site.close()
        raise
    return site


@opener("backend", requires="backend_url", imports=CLIENT_LIBRARIES)
def open_backend(settings: Settings) -> Site:
    """GET the health path once: the shared reachability result of every backend check."""
    assert settings.backend_url is not None
    return open_site("backend", settings.backend_url, settings.health_path, settings)


@opener("frontend", requires="frontend_url", imports=CLIENT_LIBRARIES)
def open_frontend(settings: Settings) -> Site:
    """GET the frontend's root once: the shared reachability result of every frontend check."""
    assert settings.frontend_url is not None
    return open_site("frontend", settings.frontend_url, "/", settings)


# --- backend -----------------------------------------------------------------------------------


def _unhealthy_parts(data: dict[str, Any]) -> list[str]:
    """`name: status` of each sub-check in the health JSON (`checks`, `details`) that is not healthy."""
    parts = []
    for key in ("checks", "details", "components"):
        section = data.get(key)
        if not isinstance(section, dict):
            continue
        for name, value in section.items():
            status = value.get("status") if isinstance(value, dict) else None
            if isinstance(status, str) and status.lower() not in HEALTHY:
                parts.append(f"{name}: {status}")
    return parts


def health(answer: Answer) -> Finding:
    """2xx; when the body is JSON with a status field, that field says healthy (ok/healthy/up/pass)."""
    evidence = {"health": answer.line(), "body": answer.excerpt()}
    if not 200 <= answer.status < 300:
        return Finding.failed(f"health {answer.path} answers {answer.status} {answer.reason}", evidence)
    data = answer.json()
    if data is False:
        return Finding.failed(f"health {answer.path} answers false", evidence)
    if isinstance(data, dict) and "status" in data:
        status = str(data["status"])
        if status.lower() not in HEALTHY:
            failing = _unhealthy_parts(data)
            detail = f" ({', '.join(failing)})" if failing else ""
            return Finding.failed(f"health {answer.path} reports status {status[:40]!r}{detail}", evidence)
    return Finding.passed(evidence)


def memory_section(answer: Answer, dotted: str) -> dict[str, Any] | None:
    """The memory section of the health JSON at `dotted` (e.g. checks.memory); None when there is none."""
    node = answer.json()
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, dict) else None


_UNITS = {"": 1, "b": 1, "kb": 1e3, "kib": 1024, "mb": 1e6, "mib": 1024**2, "gb": 1e9, "gib": 1024**3}


def _quantity(value: Any) -> float | None:
    """A number, or a string such as "45.2%", "512 MB", "1.5GiB" as a number (bytes for sizes)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip().lower().replace(" ", "").rstrip("%")
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(number):]
    try:
        return float(number) * _UNITS[unit]
    except (ValueError, KeyError):
        return None


def memory_percent(section: dict[str, Any]) -> tuple[float, str] | None:
    """The memory use in percent, and how it was read: a percent field, or a used/total pair."""
    for key, value in section.items():
        lowered = key.lower()
        if "percent" in lowered or lowered in ("pct", "usage_pct"):
            number = _quantity(value)
            if number is not None:
                return number, f"{key} = {value}"
    lowered_keys = {k.lower(): k for k in section}
    for key in section:
        lowered = key.lower()
        if "used" not in lowered:
            continue
        total_key = lowered_keys.get(lowered.replace("used", "total"))
        if total_key is None:
            continue
        used, total = _quantity(section[key]), _quantity(section[total_key])
        if used is not None and total:
            return 100.0 * used / total, f"{key} / {total_key} = {section[key]} / {section[total_key]}"
    return None


def memory_headroom(section: dict[str, Any], dotted: str, limit: float) -> Finding:
    """The memory figure of the health JSON under `limit` percent."""
    figure = memory_percent(section)
    shown = json.dumps(section)[:EXCERPT]
    if figure is None:
        return Finding.failed(
            f"health JSON has a memory section at {dotted} but no percent or used/total figure in it",
            {dotted: shown},
        )
    percent, how = figure
    evidence = {"memory": f"{dotted}: {how} → {percent:.1f}% (limit {limit:g}%)", dotted: shown}
    if percent >= limit:
        return Finding.failed(f"backend reports memory at {percent:.0f}% (limit {limit:g}%)", evidence)
    return Finding.passed(evidence)


# --- frontend ----------------------------------------------------------------------------------


class _Shell(HTMLParser):
    """The scripts and stylesheets an HTML page references, and its title."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.assets: list[tuple[str, str]] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): (v or "") for k, v in attrs}
        rel = values.get("rel", "").lower().split()
        if tag == "script" and values.get("src"):
            self.assets.append(("script", values["src"]))
        elif tag == "link" and values.get("href") and ("stylesheet" in rel or "modulepreload" in rel):
            self.assets.append(("stylesheet" if "stylesheet" in rel else "script", values["href"]))
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def shell_of(html: str) -> _Shell:
    parser = _Shell()
    parser.feed(html)
    parser.close()
    return parser


def frontend_root(answer: Answer) -> Finding:
    """The root answers 200 with HTML."""
    evidence = {"root": answer.line()}
    if answer.status != 200:
        evidence["body"] = answer.excerpt()
        return Finding.failed(f"frontend / answers {answer.status} {answer.reason}", evidence)
    if not answer.is_html:
        evidence["body"] = answer.excerpt()
        return Finding.failed(f"frontend / answers 200 with {answer.content_type or 'no content type'}, not HTML",
                              evidence)
    return Finding.passed(evidence)


def _same_shell(root: _Shell, page: _Shell) -> bool:
    if root.assets:
        return page.assets == root.assets
    return page.title.strip() == root.title.strip()


def spa_routes(site: Site, routes: list[str]) -> Finding:
    """Each deep link answers 200 with the same app shell (scripts and stylesheets) as the root."""
    assert site.first is not None
    root = shell_of(site.first.text)
    rows, bad = [], []
    for route in routes:
        try:
            answer = site.get(route)
        except TargetUnreachable as exc:
            rows.append([route, "-", "-", exc.cause])
            bad.append(f"{route} ({exc.cause})")
            continue
        if answer.status != 200:
            verdict = f"{answer.status} {answer.reason}"
        elif not answer.is_html:
            verdict = f"200 but {answer.content_type or 'no content type'}, not the app shell"
        elif not _same_shell(root, shell_of(answer.text)):
            verdict = "200 but a different page than the app shell"
        else:
            verdict = "ok"
        rows.append([route, str(answer.status), answer.content_type or "-", verdict])
        if verdict != "ok":
            bad.append(f"{route} → {verdict}")
    evidence = {"deep links": table(["route", "status", "content type", "verdict"], rows)}
    if bad:
        return Finding.failed(f"{len(bad)} of {len(routes)} deep link(s) fail: {'; '.join(bad)}", evidence)
    return Finding.passed(evidence)


def frontend_assets(site: Site) -> Finding:
    """Every script and stylesheet index.html references loads, as a script or stylesheet (not as HTML)."""
    assert site.first is not None
    refs = shell_of(site.first.text).assets
    if not refs:
        return Finding.passed({"assets": "index.html references no script or stylesheet"})
    rows, bad = [], []
    for kind, ref in refs:
        url = urljoin(site.first.url, ref)
        if origin_of(url) not in site.allowed:
            rows.append([kind, ref, "-", "-", "not checked: off the configured hosts"])
            continue
        try:
            answer = site.get(url)
        except TargetUnreachable as exc:
            rows.append([kind, ref, "-", "-", exc.cause])
            bad.append(f"{ref} ({exc.cause})")
            continue
        if answer.status != 200:
            verdict = f"{answer.status} {answer.reason}"
        elif answer.is_html:
            verdict = "200 but HTML (the SPA fallback hides a missing file)"
        else:
            verdict = "ok"
        rows.append([kind, ref, str(answer.status), answer.content_type or "-", verdict])
        if verdict != "ok":
            bad.append(f"{ref} → {verdict}")
    evidence = {"assets of index.html": table(["kind", "asset", "status", "content type", "verdict"], rows)}
    if bad:
        return Finding.failed(f"{len(bad)} of {len(refs)} asset(s) do not load: {'; '.join(bad)}", evidence)
    return Finding.passed(evidence)


# --- API ---------------------------------------------------------------------------------------


def _timing_rows(samples: list[tuple[str, Answer | str]]) -> list[list[str]]:
    rows = []
    for path, sample in samples:
        if isinstance(sample, str):
            rows.append([path, "-", "-", "-", "-", sample])
        else:
            rows.append([path, str(sample.status), ms(sample.connect, "reused"), ms(sample.first_byte),
                         ms(sample.seconds), ""])
    return rows


def no_server_errors(samples: list[tuple[str, Answer | str]]) -> Finding:
    """Each API path answers below 500 (401/403 for a protected path is fine)."""
    rows, bad = [], []
    evidence: Evidence = {}
    for path, sample in samples:
        if isinstance(sample, str):
            rows.append([path, "-", sample])
            bad.append(f"{path} ({sample})")
            continue
        rows.append([path, f"{sample.status} {sample.reason}", ms(sample.seconds)])
        if sample.status >= 500:
            bad.append(f"{path} → {sample.status}")
            evidence[f"{path} body"] = sample.excerpt()
    evidence = {"answers": table(["path", "status", "time"], rows), **evidence}
    if bad:
        return Finding.failed(f"{len(bad)} of {len(samples)} API path(s) fail: {', '.join(bad)}", evidence)
    return Finding.passed(evidence)


def latency(samples: list[tuple[str, Answer | str]], slow_seconds: float) -> Finding:
    """Each API path answers under `slow_seconds`; the evidence splits connect, first byte and total."""
    evidence = {
        "timings": table(["path", "status", "connect", "first byte", "total", "error"], _timing_rows(samples))
    }
    slow = [
        f"{path} ({s})" if isinstance(s, str) else f"{path} {s.seconds:.2f} s"
        for path, s in samples
        if isinstance(s, str) or s.seconds > slow_seconds
    ]
    if slow:
        return Finding.failed(f"{len(slow)} API path(s) slower than {slow_seconds:g} s: {', '.join(slow)}", evidence)
    return Finding.passed(evidence)


# --- metrics -----------------------------------------------------------------------------------


def gauge(text: str, metric: str) -> tuple[float, list[str]] | None:
    """The sum of the samples of `metric` in Prometheus text format, and their lines; None when absent."""
    total, lines = 0.0, []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name = stripped.split("{", 1)[0].split(None, 1)[0]
        if name != metric:
            continue
        rest = stripped.rsplit("}", 1)[1] if "{" in stripped else stripped[len(name):]
        try:
            total += float(rest.split()[0])
        except (ValueError, IndexError):
            continue
        lines.append(stripped[:200])
    return (total, lines) if lines else None


def connections_gauge(answer: Answer, metric: str, limit: int) -> Finding | None:
    """The open-connections gauge under `limit` (a leak above it); None when the metric is not exposed."""
    if answer.status != 200:
        return Finding.failed(f"metrics {answer.path} answers {answer.status} {answer.reason}",
                              {"metrics": answer.line()})
    found = gauge(answer.text, metric)
    if found is None:
        return None
    value, lines = found
    evidence = {"gauge": f"{metric} = {value:g} (limit {limit})", "samples": "\n".join(lines)}
    if value > limit:
        return Finding.failed(f"{value:g} open WebSocket connections ({metric}) over the limit of {limit}: "
                              "a connection leak", evidence)
    return Finding.passed(evidence)


def api_samples(site: Site, paths: list[str]) -> list[tuple[str, Answer | str]]:
    """GET each API path once per sweep (the error and the latency checks share the answers)."""
    return [(path, site.sample(path)) for path in paths]
