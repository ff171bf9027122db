"""Frontends that serve the app shell only to navigation requests, probed as a browser navigates.

FastAPI's `app.frontend()` (the full-stack template's frontend, served by its backend on one origin) and an
Express server with connect-history-api-fallback limited to text/html: each answers a deep link with
index.html only when the request asks for HTML. Real servers under uvicorn; the sweep's verdict on the
healthy and the broken side, and a resolution that fits how the frontend is served.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from realapps_servers import express_app, fastapi_app, health_app, write_build
from servers import Uvicorn, serving

from pytest_opscheck.probes.resource.site import NAVIGATION, SUBRESOURCE

ROUTES = ["/", "/login", "/items", "/settings", "/admin"]
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:anyio")


@pytest.fixture
def build(tmp_path: Path) -> Path:
    return write_build(tmp_path / "frontend")


@pytest.fixture
def fastapi(build: Path) -> Iterator[Uvicorn]:
    with serving(fastapi_app(build)) as server:
        yield server


def sweep(pytester: pytest.Pytester, config: str, select: str = "frontend.") -> tuple[str, dict[str, Any]]:
    pytester.makefile(".toml", opscheck=textwrap.dedent(config))
    result = pytester.runpytest("--opscheck", *QUIET, "-k", select, "--opscheck-json", "out.json")
    records = {r["id"]: r for r in json.loads((pytester.path / "out.json").read_text())["checks"]}
    return result.stdout.str(), records


def test_the_servers_answer_deep_links_only_to_navigation(build: Path) -> None:
    """What made the old probe fail: its `Accept: */*` gets the frameworks' 404, a browser gets the shell."""
    with serving(fastapi_app(build)) as fastapi, serving(express_app(build)) as express:
        for server in (fastapi, express):
            assert httpx.get(f"{server.url}/login").status_code == 404
            assert httpx.get(f"{server.url}/login", headers={"Accept": "application/json"}).status_code == 404
            shell = httpx.get(f"{server.url}/login", headers=NAVIGATION)
            assert shell.status_code == 200 and "<div id=\"root\">" in shell.text
            # a script asked as a browser asks for one: no fallback hides that it is missing
            assert httpx.get(f"{server.url}/assets/missing.js", headers=SUBRESOURCE["script"]).status_code == 404


def test_frontend_served_by_the_backend_passes_when_healthy(pytester: pytest.Pytester, fastapi: Uvicorn) -> None:
    _, records = sweep(pytester, f"""
        backend_url = "{fastapi.url}"
        health_path = "/api/v1/utils/health-check/"
        frontend_url = "{fastapi.url}"
        frontend_routes = {json.dumps(ROUTES)}
    """, "frontend. or backend.health")
    for check in ("frontend.root", "frontend.spa_routes", "frontend.assets", "backend.health"):
        assert records[check]["outcome"] == "passed", records[check]


def test_frontend_served_by_the_backend_broken_deep_links(pytester: pytest.Pytester, build: Path) -> None:
    """No fallback at all (a browser gets 404 too): failed, and the resolution speaks of the backend that serves
    the frontend, never of nginx's try_files or a `frontend` service that this stack does not have."""
    with serving(fastapi_app(build, fallback=False)) as server:
        terminal, records = sweep(pytester, f"""
            compose_project = "fsfa"
            backend_service = "api"
            backend_url = "{server.url}"
            frontend_url = "{server.url}/"
            frontend_routes = {json.dumps(ROUTES)}
        """)
    record = records["frontend.spa_routes"]
    assert record["outcome"] == "failed"
    assert record["message"] == (
        "4 of 5 deep link(s) fail: /login → 404 Not Found; /items → 404 Not Found; /settings → 404 Not Found; "
        "/admin → 404 Not Found"
    )
    assert records["frontend.root"]["outcome"] == "passed"
    resolution = record["resolution"]
    assert "app.frontend" in resolution and "docker compose -p fsfa exec api ls app/frontend" in resolution
    assert "docker compose -p fsfa build --no-cache api && docker compose -p fsfa up -d api" in resolution
    for wrong in ("try_files", "nginx", "frontend ls", "up -d frontend", "build --no-cache frontend"):
        assert wrong not in resolution, wrong
    assert "docker compose -p fsfa exec api ls app/frontend" in terminal


def test_missing_asset_is_not_hidden_by_the_fallback(pytester: pytest.Pytester, build: Path) -> None:
    (build / "assets" / "index-B7q.css").unlink()
    with serving(fastapi_app(build)) as server:
        _, records = sweep(pytester, f'frontend_url = "{server.url}"\n', "frontend.assets")
    assert records["frontend.assets"]["message"] == "1 of 2 asset(s) do not load: /assets/index-B7q.css → 404 Not Found"


def test_express_frontend_of_its_own(pytester: pytest.Pytester, build: Path) -> None:
    """A frontend server of its own: healthy with the text/html-only history fallback; without it, failed with
    the web server's fix (try_files, the history fallback) for the `frontend` service."""
    with serving(health_app({"status": "ok"})) as backend:
        config = f"""
            backend_url = "{backend.url}"
            frontend_url = "{{url}}"
            frontend_routes = {json.dumps(ROUTES)}
        """
        with serving(express_app(build)) as frontend:
            _, records = sweep(pytester, config.replace("{url}", frontend.url))
        assert {records[c]["outcome"] for c in ("frontend.root", "frontend.spa_routes", "frontend.assets")} == {
            "passed"}
        with serving(express_app(build, history=False)) as frontend:
            _, records = sweep(pytester, config.replace("{url}", frontend.url))
    record = records["frontend.spa_routes"]
    assert record["message"].startswith("4 of 5 deep link(s) fail: /login → 404 Not Found")
    assert "try_files $uri /index.html" in record["resolution"]
    assert "connect-history-api-fallback" in record["resolution"]
    # Run as plain processes (no compose_project): the rebuild in those terms, no Docker command (issue 23).
    assert "rebuild and redeploy frontend && systemctl restart frontend" in record["resolution"]
    assert "docker" not in record["resolution"]
