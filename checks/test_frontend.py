"""Health of the frontend, and the Frontend 404 errors: deep links and the assets of index.html."""

from __future__ import annotations

import pytest

from pytest_opscheck.config import Settings
from pytest_opscheck.config.keys import skipped_for
from pytest_opscheck.fixtures.edge import Http
from pytest_opscheck.probes.diagnosis import frontend as probe
from pytest_opscheck.verdict import expect, skip_unless_configured


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """The frontend does not serve its page. It is served by {frontend_serving}:
  {compose} ps {frontend}
  {compose} logs {frontend} --tail=100
  curl -i -H "Accept: text/html" {frontend_url}/
A broken build is rebuilt from scratch:
  {frontend_rebuild}"""
)
@pytest.mark.topics("health", "outage", "frontend-404")
@pytest.mark.service("frontend")
@pytest.mark.automates("curl http://localhost:3000*", "curl http://localhost:5173*")
def test_root(http: Http) -> None:
    site = http.frontend
    assert site.first is not None
    expect(probe.frontend_root(site.first))


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """Deep links of the single-page app do not get the app shell (the runbook's "Frontend 404 errors"):
{spa_fallback}
Ask as a browser does:  curl -i -H "Accept: text/html" {frontend_url}{frontend_route}
Then: {frontend_rebuild}"""
)
@pytest.mark.topics("frontend-404")
@pytest.mark.depends_on("frontend")
@pytest.mark.service("frontend")
@pytest.mark.automates("*router configuration*")
def test_spa_routes(http: Http, opscheck_config: Settings) -> None:
    skip_unless_configured(skipped_for(opscheck_config, "frontend_routes"))
    expect(probe.spa_routes(http.frontend, opscheck_config.frontend_routes))


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """index.html references scripts or stylesheets that do not load (or come back as HTML, the SPA
fallback hiding a missing file): index.html and dist/assets are from different builds, the deploy of
dist/ was partial, or Vite's `base` points elsewhere.
  {frontend_files}
Deploy the whole dist/ folder of one build (index.html last):
  {frontend_rebuild}"""
)
@pytest.mark.topics("frontend-404")
@pytest.mark.depends_on("frontend")
@pytest.mark.service("frontend")
@pytest.mark.automates("verify vite build output", "*deployment of dist/*")
def test_assets(http: Http) -> None:
    expect(probe.frontend_assets(http.frontend))
