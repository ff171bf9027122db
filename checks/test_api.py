"""API 500 errors and slow API responses, on the configured API paths."""

from __future__ import annotations

import pytest

from pytest_opscheck.config import Settings
from pytest_opscheck.config.keys import skipped_for
from pytest_opscheck.fixtures.core import open_target
from pytest_opscheck.fixtures.edge import Http
from pytest_opscheck.probes.diagnosis import api as probe
from pytest_opscheck.probes.resource.auth import AuthSession
from pytest_opscheck.probes.transport.web import Credential
from pytest_opscheck.targets import Targets
from pytest_opscheck.verdict import expect, skip_unless_configured


def _samples(http: Http, targets: Targets, settings: Settings) -> list[probe.ApiSample]:
    """The API paths' answers, each asked as the smoke account when [auth] is configured and the path does not opt
    out (`{ path = ..., auth = false }`); a login that gave no credential fails the check with its cause."""
    __tracebackhide__ = True
    skip_unless_configured(skipped_for(settings, "api_paths"))
    entries = settings.api_entries()
    credential: Credential | None = None
    if any(e.auth for e in entries) and not targets.missing("auth"):
        session = open_target(targets, "auth")
        assert isinstance(session, AuthSession)
        credential = session.credential
    return probe.api_samples(http.backend, entries, credential)


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """API endpoints answer 5xx, or refuse the smoke account's valid credential (401/403: the path was never
really asked; its auth guard and the login disagree: the scheme, the session store, a role the account lacks).
Ask it as the smoke account:  curl -i {api_url} {as_user}
The traceback is in the backend's log:
  {compose} logs {backend} --tail=100
Then check the database state and that the migrations are applied (db.reachable, db.migrations_current):
  {migrations_status}
If it started with the last deploy, roll back to the previous release."""
)
@pytest.mark.topics("api-500")
@pytest.mark.depends_on("backend", "db", "db.migrations_current")
@pytest.mark.service("backend")
@pytest.mark.automates("*identify error in logs*")
def test_no_server_errors(http: Http, opscheck_targets: Targets, opscheck_config: Settings) -> None:
    expect(probe.no_server_errors(_samples(http, opscheck_targets, opscheck_config)))


@pytest.mark.severity("P3")
@pytest.mark.resolution(
    """API endpoints answer slower than slow_seconds. Time one by hand:
  curl -w "connect %{time_connect}s  first byte %{time_starttransfer}s  total %{time_total}s\\n" \\
    -o /dev/null -s {api_url} {as_user}
A slow connect is the network or the proxy; a slow first byte is the backend or the database: see
db.slow_queries (EXPLAIN ANALYZE, add the missing index in a migration), and memory and CPU:
  {stats}
  curl {health_url} | jq '{memory_jq}'"""
)
@pytest.mark.topics("slow")
@pytest.mark.depends_on("backend")
@pytest.mark.service("backend")
@pytest.mark.automates("curl -w *", "*check response times*")
def test_latency(http: Http, opscheck_targets: Targets, opscheck_config: Settings) -> None:
    finding = probe.latency(_samples(http, opscheck_targets, opscheck_config), opscheck_config.slow_seconds)
    if finding is None:
        pytest.skip("no API path could be timed: each refused the smoke account's credential (api.no_server_errors)")
    expect(finding)
