"""API 500 errors and slow API responses, on the configured API paths."""

from __future__ import annotations

import pytest

from pytest_opscheck.config import Settings
from pytest_opscheck.fixtures.edge import Http
from pytest_opscheck.probes.diagnosis import api as probe
from pytest_opscheck.config.keys import skipped_for
from pytest_opscheck.verdict import expect, skip_unless_configured


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """API endpoints answer 5xx. The traceback is in the backend's log:
  {compose} logs {backend} --tail=100
Then check the database state and that the migrations are applied (db.reachable, db.migrations_current):
  {alembic} current        (Node: {prisma} migrate deploy)
If it started with the last deploy, roll back to the previous release."""
)
@pytest.mark.topics("api-500")
@pytest.mark.depends_on("backend", "db", "db.migrations_current")
@pytest.mark.service("backend")
@pytest.mark.automates("*identify error in logs*")
def test_no_server_errors(http: Http, opscheck_config: Settings) -> None:
    skip_unless_configured(skipped_for(opscheck_config, "api_paths"))
    expect(probe.no_server_errors(probe.api_samples(http.backend, opscheck_config.api_paths)))


@pytest.mark.severity("P3")
@pytest.mark.resolution(
    """API endpoints answer slower than slow_seconds. Time one by hand:
  curl -w "connect %{time_connect}s  first byte %{time_starttransfer}s  total %{time_total}s\\n" -o /dev/null -s <url>
A slow connect is the network or the proxy; a slow first byte is the backend or the database: see
db.slow_queries (EXPLAIN ANALYZE, add the missing index in a migration), and memory and CPU:
  docker stats --no-stream
  curl {health_url} | jq '{memory_jq}'"""
)
@pytest.mark.topics("slow")
@pytest.mark.depends_on("backend")
@pytest.mark.service("backend")
@pytest.mark.automates("curl -w *", "*check response times*")
def test_latency(http: Http, opscheck_config: Settings) -> None:
    skip_unless_configured(skipped_for(opscheck_config, "api_paths"))
    expect(probe.latency(probe.api_samples(http.backend, opscheck_config.api_paths), opscheck_config.slow_seconds))
