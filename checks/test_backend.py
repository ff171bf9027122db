"""Health: the backend's health endpoint, and the memory it reports (slow API responses)."""

from __future__ import annotations

import pytest

from pytest_opscheck.config import Settings
from pytest_opscheck.fixtures.edge import Http
from pytest_opscheck.probes.diagnosis import backend as probe
from pytest_opscheck.verdict import expect


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """The backend's health endpoint does not answer healthy. Is the container up, and why did it stop?
  docker compose ps backend
  docker compose logs backend --tail=100
Ask it yourself:  curl -i http://localhost:8000/api/v1/utils/health-check/   (Node: curl http://localhost:3001/health)
When the health JSON names a failing dependency (database), fix that first (see db.reachable).
Once the cause is gone:  docker compose up -d backend   (or docker compose restart backend)"""
)
@pytest.mark.topics("health", "outage")
@pytest.mark.depends_on("db")
@pytest.mark.service("backend")
def test_health(http: Http) -> None:
    site = http.backend
    assert site.first is not None
    expect(probe.health(site.first))


@pytest.mark.severity("P3")
@pytest.mark.resolution(
    """The backend reports its memory close to the limit: responses slow down, then it gets OOM-killed.
  curl http://localhost:3001/health | jq '.checks.memory'
  docker stats --no-stream
A restart frees it for now:  docker compose restart backend
then look for the leak (caches without bounds, listeners never removed) before it comes back."""
)
@pytest.mark.topics("slow", "resources", "health")
@pytest.mark.depends_on("backend")
@pytest.mark.service("backend")
def test_health_memory(http: Http, opscheck_config: Settings) -> None:
    site = http.backend
    assert site.first is not None
    section = probe.memory_section(site.first, opscheck_config.health_memory_path)
    if section is None:
        pytest.skip(f"the health JSON has no memory section at {opscheck_config.health_memory_path}")
    expect(probe.memory_headroom(section, opscheck_config.health_memory_path,
                                 opscheck_config.thresholds.health_memory_percent))
