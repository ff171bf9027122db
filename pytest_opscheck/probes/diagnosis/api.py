"""The API: no path answers a server error, each answers in time, and the open-connections gauge of the
metrics shows no leak."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from ..resource.site import Site
from ..result import Evidence, Finding, TargetUnreachable, table
from ..transport.concurrent import BOUND, gather
from ..transport.web import Answer, ms

# Each site's answers, per path, once per sweep: the error and the latency checks share them.
_ANSWERS: WeakKeyDictionary[Site, dict[str, Answer | str]] = WeakKeyDictionary()


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
    """GET each API path once per sweep (the error and the latency checks share the answers): `BOUND` at a
    time, each through a client of its own, all within one probe timeout."""
    answers = _ANSWERS.setdefault(site, {})
    todo = [path for path in dict.fromkeys(paths) if path not in answers]
    answers.update(zip(todo, fetch_all(site, todo, sample=True), strict=True))
    return [(path, answers[path]) for path in paths]


def fetch_all(site: Site, targets: list[str], sample: bool = False) -> list[Answer | str]:
    """GET each of `targets` (paths or URLs on the site's hosts) at once, within one probe timeout: each one's
    answer, or why there is none. `sample`: as `Site.sample` asks (a connection closed after)."""
    seconds = site.timeout

    def probe(client: Site, target: str, budget: float) -> Answer | str:
        client.timeout = budget
        if sample:
            return client.sample(target)
        try:
            return client.get(target)
        except TargetUnreachable as exc:
            return exc.cause

    def late(target: str) -> str:
        return f"not asked: the check's {seconds:g} s deadline passed first ({len(targets)} paths, {BOUND} at a time)"

    return gather(targets, probe, seconds, site.fork, Site.close, late)
