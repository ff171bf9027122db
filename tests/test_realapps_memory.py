"""Health JSON memory sections as real services write them, served by a real backend (uvicorn), each read to
the right verdict: pass under the limit, fail over it, and a skip naming the path and the keys found when the
section cannot be read (never a P3 failure). Shapes: Node's process.memoryUsage(), heapUsedMB/heapLimitMB,
NestJS Terminus (info/error/details with a status per indicator), used/max, used/limit, percent fields,
units in the key or in the value; a health path that answers HTML."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from realapps_servers import health_app
from servers import serving

from pytest_opscheck.config import settings_from_table
from pytest_opscheck.probes.diagnosis.health_memory import memory_check
from pytest_opscheck.probes.resource.site import open_backend
from pytest_opscheck.probes.result import Finding

MB = 1024 * 1024
NODE = {"rss": 180 * MB, "heapTotal": 64 * MB, "heapUsed": 61 * MB, "external": 3 * MB, "arrayBuffers": MB}


def terminus(failing: bool) -> dict[str, Any]:
    """@nestjs/terminus HealthCheckService's body: memory_heap up; memory_rss down when `failing` (503)."""
    heap = {"memory_heap": {"status": "up"}}
    rss = {"memory_rss": {"status": "down", "message": "Used rss exceeded the set threshold"}} if failing else {
        "memory_rss": {"status": "up"}}
    info, error = (heap, rss) if failing else ({**heap, **rss}, {})
    return {"status": "error" if failing else "ok", "info": info, "error": error, "details": {**heap, **rss}}


CASES = [
    # (name, body, status, path, outcome, what the verdict says)
    ("node memoryUsage", {"status": "ok", "checks": {"memory": NODE}}, 200, "checks.memory", "skip",
     "checks.memory: Node's process.memoryUsage() figures (rss, heapTotal, heapUsed, external, arrayBuffers) but "
     "no limit to compare them with"),
    ("heapUsedMB/heapLimitMB ok", {"checks": {"memory": {"heapUsedMB": 310, "heapLimitMB": 2096}}}, 200,
     "checks.memory", "pass", "checks.memory: heapUsedMB / heapLimitMB = 310 / 2096 → 14.8%"),
    ("heapUsedMB/heapLimitMB high", {"checks": {"memory": {**NODE, "heapUsedMB": 1990, "heapLimitMB": 2096}}}, 200,
     "checks.memory", "fail", "backend reports memory at 95% (limit 90%)"),
    ("terminus up", terminus(False), 200, "checks.memory", "pass",
     "details.memory_heap: status up (the backend's own check: under its threshold)"),
    ("terminus rss down", terminus(True), 503, "checks.memory", "fail",
     "backend reports details.memory_rss down: Used rss exceeded the set threshold"),
    ("terminus path moved to error", terminus(True), 503, "info.memory_rss", "fail",
     "backend reports error.memory_rss down: Used rss exceeded the set threshold"),
    ("used/max", {"memory": {"used": 300, "max": 1000}}, 200, "checks.memory", "pass",
     "memory: used / max = 300 / 1000 → 30.0%"),
    ("used/limit units in the value", {"checks": {"memory": {"used": "500 MB", "limit": "512 MB"}}}, 200,
     "checks.memory", "fail", "backend reports memory at 98% (limit 90%)"),
    ("units in the key", {"checks": {"memory": {"rssMB": 300, "limitMB": 512}}}, 200, "checks.memory", "pass",
     "checks.memory: rssMB / limitMB = 300 / 512 → 58.6%"),
    ("percent", {"checks": {"memory": {"usedPercent": "45.2%"}}}, 200, "checks.memory", "pass",
     "checks.memory: usedPercent = 45.2% → 45.2%"),
    ("percent high", {"status": "ok", "checks": {"memory": {"percent": 96.5}}}, 200, "checks.memory", "fail",
     "backend reports memory at 96% (limit 90%)"),
    ("a custom path", {"system": {"mem": {"heap_used": 10 * MB, "heap_size_limit": 100 * MB}}}, 200,
     "system.mem", "pass", "system.mem: heap_used / heap_size_limit = 10485760 / 104857600 → 10.0%"),
    ("unreadable", {"checks": {"memory": {"status": "measured", "sampled": "yes"}}}, 200, "checks.memory",
     "skip", "checks.memory: no percent or used/limit figure to read (keys: status, sampled)"),
    ("no section", {"status": "ok"}, 200, "checks.memory", "skip", "the health JSON has no memory section at "
     "checks.memory"),
]


@pytest.fixture(scope="module")
def backend() -> Iterator[tuple[Any, str]]:
    app = health_app({})
    with serving(app) as server:
        yield app, server.url


@pytest.mark.parametrize(("name", "body", "status", "path", "outcome", "said"), CASES, ids=[c[0] for c in CASES])
def test_memory_section(tmp_path: Path, backend: tuple[Any, str], name: str, body: Any, status: int, path: str,
                        outcome: str, said: str) -> None:
    app, url = backend
    app.answer.update(body=body, status=status)
    settings = settings_from_table({"backend_url": url, "health_path": "/health"}, tmp_path / "x.toml")
    site = open_backend(settings)
    try:
        assert site.first is not None
        found = memory_check(site.first, path, 90.0)
    finally:
        site.close()
    if outcome == "skip":
        assert isinstance(found, str) and found.startswith(said), found
        return
    assert isinstance(found, Finding)
    assert found.ok is (outcome == "pass"), found
    assert (found.evidence["memory"] if found.ok else found.cause).startswith(said) or said in found.evidence[
        "memory"], found


def test_health_path_answering_html_is_not_json(pytester: pytest.Pytester) -> None:
    html = "<!doctype html><html><head><title>App</title></head><body><div id=root></div></body></html>"
    with serving(health_app(html, "text/html")) as server:
        pytester.makefile(".toml", opscheck=textwrap.dedent(f"""
            backend_url = "{server.url}"
            health_path = "/health"
        """))
        pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-k", "backend.", "--opscheck-json", "out.json")
    records = {r["id"]: r for r in json.loads((pytester.path / "out.json").read_text())["checks"]}
    assert records["backend.health_memory"]["outcome"] == "skipped"
    assert records["backend.health_memory"]["message"] == (
        "the health path /health answers text/html, not JSON: no memory figures to read"
    )
