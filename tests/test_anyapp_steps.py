"""Resolutions fit how the stack runs and what it migrates with: a sweep of a stack run as plain processes (no
Compose project, no Swarm stack) prints no Docker command, a Prisma app's sweep no Alembic line, an Alembic app's
no Prisma line, and no failure's resolution keeps a `<placeholder>` the sweep knew. Every resolution of the JSON
is read, with every target down (nothing listens at the configured ports)."""

from __future__ import annotations

import json
import re
import textwrap

import pytest
from anyapp.sweeps import QUIET, placeholders
from realservices import free_port

PASSWORDS = {"APP_DB_PASSWORD": "PLANTED-steps-db-5c2a", "APP_PASSWORD": "PLANTED-steps-pw-9e0b"}
DOCKER = re.compile(r"\bdocker\b", re.IGNORECASE)


def config(deployment: str, tool: str) -> str:
    backend, frontend, db, smtp = (free_port() for _ in range(4))
    stack = {"plain": "", "compose": 'compose_project = "shop"\n'}[deployment]
    migrations = ('migrations = { tool = "prisma", migrations_dir = "server/prisma/migrations" }' if tool == "prisma"
                  else 'migrations = { tool = "alembic", script_location = "backend/app/alembic" }')
    return stack + textwrap.dedent(f"""
        backend_url = "http://127.0.0.1:{backend}"
        frontend_url = "http://127.0.0.1:{frontend}"
        frontend_routes = ["/", "/cart"]
        api_paths = ["/api/cart"]
        websocket_url = "ws://127.0.0.1:{backend}/live"
        metrics_path = "/metrics"
        database_url = "postgresql://app:${{APP_DB_PASSWORD}}@127.0.0.1:{db}/shop"
        {migrations}
        timeout = 1
        [auth]
        login_path = "/api/login"
        style = "json"
        username = "smoke"
        password = "${{APP_PASSWORD}}"
        probe_path = "/api/me"
        [smtp]
        host = "127.0.0.1"
        port = {smtp}
    """)


@pytest.mark.parametrize(("deployment", "tool"), [("plain", "prisma"), ("compose", "alembic")])
def test_resolutions_fit_the_deployment_and_the_migration_tool(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, deployment: str, tool: str
) -> None:
    for name, value in PASSWORDS.items():
        monkeypatch.setenv(name, value)
    pytester.makefile(".toml", opscheck=config(deployment, tool))
    select = "backend. or frontend. or api. or auth. or ws. or db. or email."
    result = pytester.runpytest("--opscheck", *QUIET, "-rf", "-k", select, "--opscheck-json", "out.json")
    terminal = result.stdout.str()
    failed = [c for c in json.loads((pytester.path / "out.json").read_text())["checks"] if c["outcome"] == "failed"]
    assert len(failed) >= 10, terminal  # every target is down: most checks fail and print their steps
    other = "alembic" if tool == "prisma" else "prisma"
    for record in failed:
        resolution = record["resolution"]
        assert other not in resolution.lower(), (record["id"], resolution)
        assert not placeholders(resolution), (record["id"], resolution)
        if deployment == "plain":
            assert not DOCKER.search(resolution), (record["id"], resolution)
    if deployment == "plain":
        assert not [line for line in terminal.splitlines() if DOCKER.search(line)], terminal
        assert any("journalctl -u backend" in r["resolution"] for r in failed)
    else:
        assert any("docker compose -p shop logs backend" in r["resolution"] for r in failed)
    for secret in PASSWORDS.values():
        assert secret not in terminal
