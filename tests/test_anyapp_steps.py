"""Resolutions fit how the stack runs and what it migrates with: a sweep of a stack run as plain processes (no
Compose project, no Swarm stack) prints no Docker command, a Prisma app's sweep no Alembic line, an Alembic app's
no Prisma line, and no failure's resolution keeps a `<placeholder>` the sweep knew. Every resolution of the JSON
is read, with every target down (nothing listens at the configured ports)."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from anyapp.sweeps import QUIET, placeholders
from realservices import free_port

PASSWORDS = {"APP_DB_PASSWORD": "PLANTED-steps-db-5c2a", "APP_PASSWORD": "PLANTED-steps-pw-9e0b"}
DOCKER = re.compile(r"\bdocker\b", re.IGNORECASE)
# A Docker command (not the word in prose, "the disk holding Docker's data").
DOCKER_COMMAND = re.compile(r"\bdocker (compose|exec|ps|logs|stats|inspect|service|stack|node|network|system|image|"
                            r"volume|run|restart)\b")


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


# A Compose project and an Alembic app are read for every built-in check below, without a sweep.
@pytest.mark.parametrize(("deployment", "tool"), [("plain", "prisma")])
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


def _resolutions() -> dict[str, str]:
    """Every built-in check's resolution marker, by check id."""
    import ast

    found = {}
    for path in sorted((Path(__file__).parents[1] / "checks").glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                for mark in node.decorator_list:
                    if isinstance(mark, ast.Call) and getattr(mark.func, "attr", "") == "resolution":
                        found[f"{path.stem.removeprefix('test_')}.{node.name.removeprefix('test_')}"] = \
                            mark.args[0].value
    return found


RESOLUTIONS = _resolutions()
TABLES = {
    "plain": {},
    "compose": {"compose_project": "shop"},
    "swarm": {"swarm_stack": "shop"},
}


@pytest.mark.parametrize("tool", ["prisma", "alembic"])
@pytest.mark.parametrize("deployment", sorted(TABLES))
def test_every_built_in_resolution_fits(deployment: str, tool: str) -> None:
    """Rendered for each deployment and tool, every built-in check's steps: no Docker line for plain processes,
    no line of the other migration tool, and every value the sweep knows written in."""
    from pytest_opscheck.config import settings_from_table
    from pytest_opscheck.steps import render, values

    table = {**TABLES[deployment], "backend_url": "http://127.0.0.1:9000", "frontend_url": "http://127.0.0.1:9001",
             "api_paths": ["/api/items"], "websocket_url": "ws://127.0.0.1:9000/live",
             "database_url": "postgresql://app:${P}@127.0.0.1:5432/shop", "migrations": {"tool": tool},
             "auth": {"login_path": "/login", "username": "smoke", "password": "${P}", "probe_path": "/me",
                      "scheme": "Token"}}
    settings = settings_from_table(table, Path("opscheck.toml"), environ={"P": "PLANTED-pw-000"})
    known = values(settings)
    other = "alembic" if tool == "prisma" else "prisma"
    assert len(RESOLUTIONS) > 30
    from pytest_opscheck.swarm_steps import swarm_terms

    for check, text in RESOLUTIONS.items():
        rendered = render(swarm_terms(text, "shop") if deployment == "swarm" else text, known)
        assert other not in rendered.lower(), (check, rendered)
        assert not re.search(r"\{(compose|backend|db|alembic|prisma|psql|api_url|as_user|migrations_status)\}",
                             rendered), (check, rendered)
        assert not re.search(r"<(backend_url|frontend_url|websocket_url|auth\.\w+|url)>", rendered), (check, rendered)
        if deployment == "plain":
            assert not DOCKER_COMMAND.search(rendered), (check, rendered)
        if deployment == "swarm":
            # building images from the stack file is docker compose's job there too; nothing else is
            assert not re.search(r"docker compose (?!build)", rendered), (check, rendered)


@pytest.mark.parametrize("host", ["db.example-managed.internal", "10.0.0.7"])
def test_a_database_outside_the_stack_gets_no_compose_line(host: str) -> None:
    """A Compose project whose database is managed elsewhere: no `docker compose ... db` command, psql to its
    host instead."""
    from pytest_opscheck.config import settings_from_table
    from pytest_opscheck.steps import render, values

    table = {"compose_project": "shop", "backend_url": "http://127.0.0.1:9000",
             "database_url": f"postgresql://app:${{P}}@{host}:5432/shop", "migrations": {"tool": "alembic"}}
    known = values(settings_from_table(table, Path("opscheck.toml"), environ={"P": "PLANTED-pw-000"}))
    rendered = "\n".join(render(text, known) for text in RESOLUTIONS.values())
    assert not re.search(r"docker compose -p shop \w+( -d)? db\b", rendered), rendered
    assert f"psql -h {host} -p 5432 -U app -d shop" in rendered
    assert f"managed database's console ({host})" in rendered
    local = values(settings_from_table({**table, "database_url": "postgresql://app:${P}@localhost:5432/shop"},
                                       Path("opscheck.toml"), environ={"P": "PLANTED-pw-000"}))
    assert "docker compose -p shop logs db" in "\n".join(render(text, local) for text in RESOLUTIONS.values())
