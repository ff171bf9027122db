"""The backend's health when its health endpoint is not what the config says: no health endpoint at all
(`health_path = ""`: the backend answering below 500 at its root is what can be checked), and a configured
health path that answers 404 while the backend answers at its root: a configuration mistake, not a backend
that is down."""

from __future__ import annotations

from ..resource.site import Site
from ..result import Finding
from ..transport.web import Answer

MISSING = (404, 410)


def without_endpoint(root: Answer) -> Finding:
    """No health endpoint configured: the backend answers HTTP below 500 at its root."""
    evidence = {"root": root.line(), "note": 'health_path = "": the backend has no health endpoint; its root '
                                             "answering below 500 is what this check can prove"}
    if root.status >= 500:
        evidence["body"] = root.excerpt()
        return Finding.failed(f"the backend fails at its root: {root.status} {root.reason} (no health endpoint "
                              'configured, health_path = "")', evidence)
    return Finding.passed(evidence)


def wrong_path(site: Site, answer: Answer, health_path: str) -> Finding | None:
    """A health path that is missing (404/410) while the backend answers at its root: the configuration is wrong
    (health_path), the backend is up. None when the health answer is not a 404 or the root does not answer."""
    if answer.status not in MISSING:
        return None
    root = site.sample("/")
    if isinstance(root, str) or root.status >= 500:
        return None
    evidence = {"health": answer.line(), "root": f"{root.line()} (the backend is up)", "body": answer.excerpt()}
    return Finding.failed(
        f"configuration: health_path {health_path} answers {answer.status} {answer.reason} while the backend answers "
        f"at its root ({root.status} {root.reason}): the app has no health endpoint at that path; set health_path "
        'to its health endpoint, or health_path = "" when it has none', evidence)
