"""The API: no path answers a server error, each answers in time, and the open-connections gauge of the
metrics shows no leak."""

from __future__ import annotations

from dataclasses import dataclass
from weakref import WeakKeyDictionary

from ...config.settings import ApiPath
from ...model import Fact
from .. import facts
from ..resource.site import Site
from ..result import Evidence, Finding, TargetUnreachable, table
from ..transport.concurrent import BOUND, gather
from ..transport.web import Answer, Credential, ms

# Each site's answers, per path and whether asked logged in, once per sweep: the error and latency checks share them.
_ANSWERS: WeakKeyDictionary[Site, dict[tuple[str, bool], Answer | str]] = WeakKeyDictionary()


@dataclass(frozen=True)
class ApiSample:
    """One API path's answer (or why there is none), and whether it was asked as the logged-in user."""

    path: str
    answer: Answer | str
    logged_in: bool = False

    @property
    def as_who(self) -> str:
        return "logged in" if self.logged_in else "anonymous"

    @property
    def refused(self) -> bool:
        """The smoke account's valid credential refused (401/403): the path was never really asked."""
        return self.logged_in and isinstance(self.answer, Answer) and self.answer.status in (401, 403)


def _timing_rows(samples: list[ApiSample]) -> list[list[str]]:
    rows = []
    for s in samples:
        if isinstance(s.answer, str):
            rows.append([s.path, "-", "-", "-", "-", s.answer])
        else:
            a = s.answer
            rows.append([s.path, str(a.status), ms(a.connect, "reused"), ms(a.first_byte), ms(a.seconds),
                         "credential refused: not timed" if s.refused else ""])
    return rows


def asked_as(samples: list[ApiSample]) -> str:
    """Which paths were asked as the logged-in user and which anonymously: `logged in: /a; anonymous: /b`."""
    groups: dict[str, list[str]] = {}
    for s in samples:
        groups.setdefault(s.as_who, []).append(s.path)
    return "; ".join(f"{who}: {', '.join(paths)}" for who, paths in groups.items())


def no_server_errors(samples: list[ApiSample]) -> Finding:
    """Each API path answers below 500, and a path asked as the logged-in user does not refuse the smoke
    account's valid credential (a 401/403 there is never a pass: the path was not asked at all)."""
    rows, bad = [], []
    evidence: Evidence = {}
    said: list[Fact] = []  # what the error answers name (a missing relation, a refused database), typed
    for s in samples:
        if isinstance(s.answer, str):
            rows.append([s.path, "-", s.answer])
            bad.append(f"{s.path} ({s.answer})")
            continue
        answer = s.answer
        rows.append([s.path, f"{answer.status} {answer.reason}", ms(answer.seconds)])
        if answer.status >= 500:
            bad.append(f"{s.path} → {answer.status}" + (" (logged in)" if s.logged_in else ""))
            evidence[f"{s.path} body"] = answer.excerpt()
            said.extend(facts.answered(answer.status, answer.text, s.path))
        elif s.refused:
            bad.append(f"{s.path} refuses the smoke account's valid credential ({answer.status} {answer.reason})")
            evidence[f"{s.path} body"] = answer.excerpt()
    evidence = {"answers": table(["path", "status", "time"], rows), "asked as": asked_as(samples), **evidence}
    if bad:
        return Finding.failed(f"{len(bad)} of {len(samples)} API path(s) fail: {', '.join(bad)}", evidence,
                              facts=tuple(said))
    return Finding.passed(evidence)


def latency(samples: list[ApiSample], slow_seconds: float) -> Finding | None:
    """Each API path answers under `slow_seconds`, timed as the user it is asked as (a logged-in path's refusal
    is not timed: it says nothing of what users wait for); the evidence splits connect, first byte and total.
    None when no path could be timed."""
    evidence = {
        "timings": table(["path", "status", "connect", "first byte", "total", "error"], _timing_rows(samples)),
        "asked as": asked_as(samples),
    }
    timed = [s for s in samples if not s.refused]
    if not timed:
        return None
    slow = [
        f"{s.path} ({s.answer})" if isinstance(s.answer, str) else f"{s.path} {s.answer.seconds:.2f} s"
        for s in timed
        if isinstance(s.answer, str) or s.answer.seconds > slow_seconds
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


def api_samples(
    site: Site, paths: list[ApiPath] | list[str] | list[ApiPath | str], credential: Credential | None = None
) -> list[ApiSample]:
    """GET each API path once per sweep (the error and the latency checks share the answers), as the logged-in
    user (`credential`) unless the entry opts out: `BOUND` at a time, each through a client of its own, all within
    one probe timeout."""
    entries = [ApiPath(p) if isinstance(p, str) else p for p in paths]
    answers = _ANSWERS.setdefault(site, {})
    keys = [(e.path, e.auth and credential is not None) for e in entries]
    todo = [key for key in dict.fromkeys(keys) if key not in answers]
    seconds = site.timeout

    def probe(client: Site, key: tuple[str, bool], budget: float) -> Answer | str:
        client.timeout = budget
        return client.sample(key[0], credential if key[1] else None)

    def late(key: tuple[str, bool]) -> str:
        return f"not asked: the check's {seconds:g} s deadline passed first ({len(todo)} paths, {BOUND} at a time)"

    answers.update(zip(todo, gather(todo, probe, seconds, site.fork, Site.close, late), strict=True))
    return [ApiSample(path, answers[(path, logged)], logged) for path, logged in keys]


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
