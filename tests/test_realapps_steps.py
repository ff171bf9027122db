"""Resolution steps rendered with the user's values.

A sweep of a config with non-default URLs, paths, Compose project and service names and migration folder,
every target dead (nothing listens): the terminal prints each failure's resolution with those values, and no
resolution of any built-in check holds the runbooks' example hosts, services or `cd backend`. A check linked
to a runbook section keeps that section's steps as the team wrote them.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
from realservices import free_port

from pytest_opscheck.config import settings_from_table
from pytest_opscheck.folders import builtin_checks_dir
from pytest_opscheck.steps import PLACEHOLDERS, render, values

RUNBOOK = Path(__file__).parent / "data" / "runbooks" / "000_903c53a40e61f8c6.txt"
EXAMPLES = ("localhost:8000", "localhost:3001", "localhost:3000", "localhost:5173", "ws://localhost", "cd backend")
# A Compose command on one of the runbooks' service names instead of the configured ones (the frontend has no
# setting of its own: `frontend`, or the backend's service when the backend serves it).
EXAMPLE_SERVICE = re.compile(r"(?:exec|logs|restart|ps|up -d|stop|build --no-cache|build) (?:backend|db)\b")
TEAM = '''
import pytest
from pytest_opscheck.verdict import fail

@pytest.mark.severity("P1")
@pytest.mark.resolution("Ours first: {compose} restart {db}")
@pytest.mark.runbook("runbook.md#database-connection-errors")
def test_database():
    fail("db: connection refused")
'''


def config(tmp: Path) -> str:
    dead = [free_port() for _ in range(5)]  # the WebSocket on a port of its own: a fault of its own
    (tmp / "deploy").mkdir()
    (tmp / "deploy" / ".env").write_text(
        "SHOP_DB_PASSWORD=PLANTED-steps-pw-31\nSHOP_SMOKE_PASSWORD=PLANTED-steps-pw-32\n")
    return textwrap.dedent(f"""
        compose_project = "shop"
        env_file = "deploy/.env"
        backend_service = "api"
        db_service = "pg"
        backend_url = "http://127.0.0.1:{dead[0]}"
        health_path = "/healthz"
        metrics_path = "/internal/metrics"
        frontend_url = "http://127.0.0.1:{dead[1]}"
        frontend_routes = ["/", "/cart"]
        api_paths = ["/api/cart"]
        websocket_url = "ws://127.0.0.1:{dead[4]}/live"
        database_url = "postgresql://shopper:${{SHOP_DB_PASSWORD}}@127.0.0.1:{dead[2]}/shopdb?schema=shop"
        migrations = {{ tool = "prisma", migrations_dir = "services/api/prisma/migrations" }}
        required_env = {{ api = ["JWT_SECRET"] }}
        auth.login_path = "/auth/token"
        auth.style = "json"
        auth.username = "smoke"
        auth.password = "${{SHOP_SMOKE_PASSWORD}}"
        auth.probe_path = "/me"
        smtp = {{ host = "127.0.0.1", port = {dead[3]} }}
        runbook = "runbook.md"
        checks = ["ops"]
    """), dead


def test_terminal_resolutions_carry_the_configured_values(pytester: pytest.Pytester) -> None:
    text, dead = config(pytester.path)
    pytester.makefile(".toml", opscheck=text)
    shutil.copy(RUNBOOK, pytester.path / "runbook.md")
    pytester.mkdir("ops")
    (pytester.path / "ops" / "test_team.py").write_text(TEAM)
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                                "--opscheck-timeout", "1", "--opscheck-json", "out.json")
    terminal = result.stdout.str()
    records: dict[str, Any] = {r["id"]: r for r in json.loads((pytester.path / "out.json").read_text())["checks"]}
    assert "PLANTED-steps-pw" not in terminal

    backend, frontend = f"http://127.0.0.1:{dead[0]}", f"http://127.0.0.1:{dead[1]}"
    for expected in (
        f"curl -i {backend}/healthz",  # backend.health
        "docker compose -p shop logs api --tail=100",
        "docker compose -p shop exec pg psql -U shopper -d shopdb",  # db.reachable
        "docker compose -p shop restart pg",
        f'curl -i -H "Accept: text/html" {frontend}/',  # frontend.root
        f"wscat -c ws://127.0.0.1:{dead[4]}/live",  # ws.handshake (its own origin: a root of its own)
        "grep -e POSTGRES -e DATABASE_URL deploy/.env",
    ):
        assert expected in terminal, expected
    for check, record in records.items():
        if not check.startswith("team."):
            assert_no_example(check, record["resolution"])

    # the team's own steps are rendered too; the runbook section linked stays as the team wrote it
    team = records["team.database"]["resolution"]
    assert team.startswith("Ours first: docker compose -p shop restart pg")
    assert "docker compose restart db" in team and "Runbook: runbook.md#database-connection-errors" in team


def assert_no_example(check: str, resolution: str) -> None:
    for example in EXAMPLES:
        assert example not in resolution, (check, example)
    assert not EXAMPLE_SERVICE.search(resolution), (check, EXAMPLE_SERVICE.search(resolution))
    assert not re.search(r"docker compose (?!-p shop)", resolution), (check, resolution)
    assert not re.search(r"\{(" + "|".join(PLACEHOLDERS) + r")\}", resolution), (check, "unrendered")


def test_every_built_in_resolution_rendered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each built-in check's own steps (also those a failing root hides behind "fix X first"), rendered."""
    text, dead = config(tmp_path)
    monkeypatch.chdir(tmp_path)
    settings = settings_from_table(tomllib.loads(text), tmp_path / "opscheck.toml")
    rendered = values(settings)
    declared = {}
    for path in sorted(builtin_checks_dir().glob("test_*.py")):
        module = importlib.import_module(f"pytest_opscheck.checks.{path.stem}")
        for name, function in vars(module).items():
            marks = {m.name: m for m in getattr(function, "pytestmark", [])}
            if name.startswith("test_") and "resolution" in marks:
                declared[f"{path.stem[5:]}.{name[5:]}"] = render(marks["resolution"].args[0], rendered)
    assert len(declared) > 30
    for check, resolution in declared.items():
        assert_no_example(check, resolution)
    assert "cd services/api && npx prisma migrate deploy" in declared["db.migrations_current"]
    assert f"curl -X POST http://127.0.0.1:{dead[0]}/auth/token" in declared["auth.login"]
    assert "docker compose -p shop exec api" in declared["auth.secret_configured"]


def test_only_known_placeholders_are_rendered(tmp_path: Path) -> None:
    settings = settings_from_table({"compose_file": "ops/compose.yml", "backend_service": "api"}, tmp_path / "x.toml")
    text = "{compose} logs {backend} | awk '{print $1}' ; docker inspect --format '{{json .State}}' ; ${HOME} {nope}"
    rendered = render(text, values(settings))
    compose_file = tmp_path / "ops" / "compose.yml"
    assert rendered == (
        f"docker compose -f {compose_file} logs api | awk '{{print $1}}' ; "
        "docker inspect --format '{{json .State}}' ; ${HOME} {nope}"
    )
