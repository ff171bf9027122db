"""The README's quickstart configs, exercised against stand-ins of the applications as they are today.

`examples/fastapi`: the full-stack FastAPI template (one DATABASE_URL in .env built from ${POSTGRES_PASSWORD},
the built frontend served by the backend on the same origin through app.frontend, a form login, Alembic);
`examples/node`: a Node + Prisma app (a Prisma DATABASE_URL with ?schema= and pool parameters, Prisma
migrations). Each example folder is copied as it is; only the hosts, ports and the database name are pointed
at this machine's real servers (uvicorn, PostgreSQL). A healthy stack gets no false alarm.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbhelpers import PLANTED_DB_PASSWORD, admin, alembic_folder, make_database
from realapps_servers import fastapi_app, write_build
from realservices import Postgres
from servers import SMOKE_PASSWORD, SMOKE_USER, Faults, api_app, serving

from pytest_opscheck.config import load_settings

EXAMPLES = Path(__file__).parents[1] / "examples"
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:anyio")


@pytest.fixture(autouse=True)
def smoke_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCHECK_USER", SMOKE_USER)
    monkeypatch.setenv("OPSCHECK_PASSWORD", SMOKE_PASSWORD)
    for name in ("DATABASE_URL", "POSTGRES_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def test_fastapi_example_reads_as_todays_template() -> None:
    settings = load_settings(EXAMPLES / "fastapi", str(EXAMPLES / "fastapi" / "pyproject.toml"))
    assert settings.database_url == "postgresql://postgres:changethis@localhost:5432/app"
    assert settings.frontend_url == settings.backend_url == "http://localhost:8000"
    assert settings.required_env == {"backend": ["SECRET_KEY", "DATABASE_URL", "FIRST_SUPERUSER_PASSWORD"]}
    compose = (EXAMPLES / "fastapi" / "compose.yml").read_text()
    assert "frontend:" not in compose and "DATABASE_URL:" in compose


def test_node_example_reads_its_prisma_url() -> None:
    settings = load_settings(EXAMPLES / "node", str(EXAMPLES / "node" / "opscheck.toml"))
    assert settings.database_url == (
        "postgresql://postgres:changethis@localhost:5432/motel?schema=motel&connection_limit=5&pool_timeout=10"
    )


def copy_example(name: str, into: Path, hosts: dict[str, str], database_url: str) -> Path:
    """The example folder in `into`, its hosts and its .env DATABASE_URL's address pointed at this machine."""
    shutil.copytree(EXAMPLES / name, into, dirs_exist_ok=True)
    config = next(p for p in (into / "pyproject.toml", into / "opscheck.toml") if p.exists())
    text = config.read_text()
    for old, new in hosts.items():
        text = text.replace(old, new)
    config.write_text(text)
    env = (into / ".env").read_text()
    (into / ".env").write_text(re.sub(r"^POSTGRES_PASSWORD=.*$", f"POSTGRES_PASSWORD={PLANTED_DB_PASSWORD}",
                                      re.sub(r"^DATABASE_URL=.*$", f"DATABASE_URL={database_url}", env, flags=re.M),
                                      flags=re.M))
    return config


def sweep(pytester: pytest.Pytester, config: Path, select: str) -> dict[str, Any]:
    result = pytester.runpytest("--opscheck", *QUIET, "--opscheck-config", str(config), "-k", select,
                                "--opscheck-json", "out.json")
    out = (pytester.path / "out.json").read_text()
    assert PLANTED_DB_PASSWORD not in result.stdout.str() + out and SMOKE_PASSWORD not in out
    return {r["id"]: r for r in json.loads(out)["checks"]}


@pytest.fixture
def template(tmp_path: Path) -> Iterator[str]:
    """The template's backend: its API (login, users/me, items, health) and the frontend build on one origin."""
    api, front = api_app(Faults()), fastapi_app(write_build(tmp_path / "frontend"))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        wanted = api if scope["type"] == "http" and scope["path"].startswith("/api/") else front
        await wanted(scope, receive, send)

    with serving(app) as server:
        yield server.url


def test_fastapi_quickstart_on_a_healthy_template(pytester: pytest.Pytester, postgres: Postgres, template: str) -> None:
    name = make_database(postgres.url)
    alembic_folder(pytester.path / "backend" / "app")
    with admin(postgres.url, name) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('tip')")
    config = copy_example("fastapi", pytester.path, {"http://localhost:8000": template}, (
        f"postgresql://app:${{POSTGRES_PASSWORD}}@127.0.0.1:{postgres.port}/{name}"))
    # everything but what needs the Compose project running (the stack, and the secret read in its container)
    records = sweep(pytester, config, "(backend. or frontend. or api. or auth. or db.) and not secret_configured")
    failed = {check: r["message"] for check, r in records.items() if r["outcome"] == "failed"}
    assert failed == {}
    for check in ("backend.health", "frontend.root", "frontend.spa_routes", "frontend.assets", "auth.login",
                  "auth.token_accepted", "auth.rejects_anonymous", "db.reachable", "db.migrations_current"):
        assert records[check]["outcome"] == "passed", records[check]
    assert records["auth.cors_preflight"]["message"].startswith("the frontend shares the backend's origin")


PRISMA_INIT = 'CREATE TABLE "Suite" ("id" SERIAL NOT NULL, "name" TEXT NOT NULL, PRIMARY KEY ("id"));\n'


def test_node_quickstart_on_a_healthy_prisma_database(pytester: pytest.Pytester, postgres: Postgres) -> None:
    name = make_database(postgres.url)
    migration = pytester.path / "backend" / "prisma" / "migrations" / "20240101000000_init"
    migration.mkdir(parents=True)
    (migration / "migration.sql").write_text(PRISMA_INIT)
    with admin(postgres.url, name) as conn:
        conn.execute("CREATE SCHEMA motel")
        conn.execute("SET search_path = motel")
        conn.execute(PRISMA_INIT)
        conn.execute('CREATE TABLE "_prisma_migrations" (id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL,'
                     " finished_at timestamptz, migration_name varchar(255) NOT NULL, logs text,"
                     " rolled_back_at timestamptz, started_at timestamptz NOT NULL DEFAULT now(),"
                     " applied_steps_count integer NOT NULL DEFAULT 0)")
        conn.execute('INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name) VALUES'
                     " ('1', %s, now(), '20240101000000_init')", (hashlib.sha256(PRISMA_INIT.encode()).hexdigest(),))
        conn.execute("GRANT USAGE ON SCHEMA motel TO app")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA motel TO app")
    url = (f"postgresql://app:${{POSTGRES_PASSWORD}}@127.0.0.1:{postgres.port}/{name}"
           "?schema=motel&connection_limit=5&pool_timeout=10")
    config = copy_example("node", pytester.path, {}, url)
    records = sweep(pytester, config, "db.")
    for check in ("db.reachable", "db.migrations_current", "db.connections_headroom", "db.no_long_transactions"):
        assert records[check]["outcome"] == "passed", records[check]
    assert "latest 20240101000000_init" in records["db.migrations_current"]["evidence"]["applied"]
