"""Host-networked stacks: `stack.backend_reaches_db` tests the address the backend itself is configured with.

A real Compose project of busybox containers on the host's network (`network_mode: host`), as the
full-stack FastAPI template's users run it behind a host proxy: the backend's own `POSTGRES_SERVER=127.0.0.1`
and `POSTGRES_PORT`, or its `DATABASE_URL` (a Prisma URL with the password planted), reach a real PostgreSQL
on 127.0.0.1. A `db` service exists, so the old guess `db:<port>` would fail "cannot resolve db" (P1) on
this healthy stack; a backend configured with nothing is skipped with what to set, never failed.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from dbhelpers import PLANTED_DB_PASSWORD, app_url, make_database
from realservices import Postgres, free_port

SWEEP = ("--opscheck", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-k", "stack.backend_reaches_db",
         "--opscheck-json", "out.json")


@pytest.fixture(scope="module")
def host_stack(compose_stack: Any, postgres: Postgres) -> tuple[str, int, int]:
    name = f"opshost{uuid.uuid4().hex[:6]}"
    refused = free_port()
    url = f"postgresql://app:{PLANTED_DB_PASSWORD}@127.0.0.1:{postgres.port}/app?schema=blog&connection_limit=5"

    def service(environment: dict[str, str]) -> str:
        env = "".join(f'\n      {k}: "{v}"' for k, v in environment.items())
        return f"""
    image: ${{BUSYBOX}}
    network_mode: host
    command: sleep 3600
    environment:
      TZ: UTC{env}"""

    yaml = f"""
name: {name}
services:
  backend:{service({"POSTGRES_SERVER": "127.0.0.1", "POSTGRES_PORT": str(postgres.port),
                    "POSTGRES_PASSWORD": PLANTED_DB_PASSWORD})}
  worker:{service({"DATABASE_URL": url})}
  broken:{service({"POSTGRES_SERVER": "127.0.0.1", "POSTGRES_PORT": str(refused)})}
  silent:{service({})}
  db:{service({})}
"""
    compose_stack(yaml, name)
    return yaml, postgres.port, refused


def sweep(pytester: pytest.Pytester, yaml: str, postgres: Postgres, service: str) -> dict[str, Any]:
    (pytester.path / "docker-compose.yml").write_text(yaml)
    pytester.makefile(".toml", opscheck=(
        f'compose_file = "docker-compose.yml"\nbackend_service = "{service}"\n'
        f'database_url = "{app_url(postgres.url, make_database(postgres.url))}"\n'
    ))
    result = pytester.runpytest(*SWEEP)
    out = (pytester.path / "out.json").read_text()
    assert PLANTED_DB_PASSWORD not in result.stdout.str() + out
    return {r["id"]: r for r in json.loads(out)["checks"]}["stack.backend_reaches_db"]


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCHECK_TEST_DB_PASSWORD", PLANTED_DB_PASSWORD)


def test_backend_configured_with_postgres_server(
    pytester: pytest.Pytester, host_stack: tuple[str, int, int], postgres: Postgres
) -> None:
    yaml, port, _ = host_stack
    record = sweep(pytester, yaml, postgres, "backend")
    assert record["outcome"] == "passed", record
    assert record["evidence"]["database address"].startswith(f"127.0.0.1:{port} (POSTGRES_SERVER/POSTGRES_PORT of ")


def test_backend_configured_with_a_database_url(
    pytester: pytest.Pytester, host_stack: tuple[str, int, int], postgres: Postgres
) -> None:
    yaml, port, _ = host_stack
    record = sweep(pytester, yaml, postgres, "worker")
    assert record["outcome"] == "passed", record
    assert record["evidence"]["database address"].startswith(f"127.0.0.1:{port} (DATABASE_URL of ")


def test_backend_configured_with_a_dead_address_fails(
    pytester: pytest.Pytester, host_stack: tuple[str, int, int], postgres: Postgres
) -> None:
    yaml, _, refused = host_stack
    record = sweep(pytester, yaml, postgres, "broken")
    assert record["outcome"] == "failed"
    assert record["severity"] == "P1"
    assert record["message"].endswith(f"cannot connect to 127.0.0.1:{refused}: connection refused")


def test_backend_configured_with_nothing_is_skipped_saying_what_to_set(
    pytester: pytest.Pytester, host_stack: tuple[str, int, int], postgres: Postgres
) -> None:
    yaml, _, _ = host_stack
    record = sweep(pytester, yaml, postgres, "silent")
    assert record["outcome"] == "skipped"
    assert record["message"] == (
        "not configured: stack_db_address (the silent container has no DATABASE_URL, POSTGRES_SERVER, "
        'POSTGRES_HOST or DB_HOST: set stack_db_address = "host:port" as the backend reaches the database)'
    )
