"""Health: the backend's health endpoint, and the memory it reports (slow API responses)."""

from __future__ import annotations

import pytest

from pytest_opscheck.config import Settings
from pytest_opscheck.fixtures.edge import Http
from pytest_opscheck.probes.diagnosis import backend as probe
from pytest_opscheck.probes.diagnosis import health_memory, health_path
from pytest_opscheck.verdict import expect


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """The backend's health endpoint does not answer healthy. A health path the backend does not have (a
404 while it answers at its root) is a configuration mistake: set health_path to the app's health endpoint,
or health_path = "" when it has none. Otherwise, is the backend up, and why did it stop?
  {compose} ps {backend}
  {compose} logs {backend} --tail=100
Ask it yourself:  curl -i {health_url}
When the health JSON names a failing dependency (database), fix that first (see db.reachable).
Once the cause is gone:  {compose} up -d {backend}   (or {compose} restart {backend})"""
)
@pytest.mark.topics("health", "outage")
@pytest.mark.depends_on("db")
@pytest.mark.service("backend")
@pytest.mark.automates("curl */health*", "*check health endpoints*")
def test_health(http: Http, opscheck_config: Settings) -> None:
    site = http.backend
    assert site.first is not None
    if not opscheck_config.health_path:
        expect(health_path.without_endpoint(site.first))
        return
    mistake = health_path.wrong_path(site, site.first, opscheck_config.health_path)
    expect(mistake or probe.health(site.first))


@pytest.mark.severity("P3")
@pytest.mark.resolution(
    """The backend reports its memory close to the limit (or its own memory check down, as NestJS Terminus's
memory_heap / memory_rss say): responses slow down, then it gets OOM-killed.
  curl -s {health_url} | jq .
  docker stats --no-stream
A restart frees it for now:  {compose} restart {backend}
then look for the leak (caches without bounds, listeners never removed) before it comes back."""
)
@pytest.mark.topics("slow", "resources", "health")
@pytest.mark.depends_on("backend")
@pytest.mark.service("backend")
@pytest.mark.automates("curl */health*memory*", "*check memory usage*")
def test_health_memory(http: Http, opscheck_config: Settings) -> None:
    if not opscheck_config.health_path:
        pytest.skip('not configured: health_path (health_path = "": the backend has no health endpoint)')
    site = http.backend
    assert site.first is not None
    outcome = health_memory.memory_check(site.first, opscheck_config.health_memory_path,
                                         opscheck_config.thresholds.health_memory_percent)
    if isinstance(outcome, str):  # nothing to read: no section, not JSON, or figures without a limit
        pytest.skip(outcome)
    expect(outcome)
