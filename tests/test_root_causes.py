"""Root causes on real services: a login whose 500s come from the database, told apart from the database's
own failure; a backend whose schema is behind its migrations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from dbhelpers import PLANTED_DB_PASSWORD, admin, alembic_folder, app_url, make_database
from realservices import Postgres, free_port
from servers import serving

SMOKE_USER, SMOKE_PASSWORD = "smoke@example.com", "PLANTED-rc-pw-55a1"


def db_login_app(database_url: str) -> Any:
    """A FastAPI-template-like backend: the health check answers without the database (as the template's
    does), the login reads the user table, and an exception there is Starlette's plain 500."""
    import psycopg
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def health(request: Request) -> Response:
        return JSONResponse(True)

    def read(email: str) -> Any:
        with psycopg.connect(database_url, connect_timeout=2) as conn:  # raises: Starlette answers 500
            return conn.execute('SELECT hashed_password FROM "user" WHERE email = %s', (email,)).fetchone()

    async def login(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        row = await run_in_threadpool(read, form["username"])  # as a sync session in a worker thread: others go on
        if row is None or row[0] != form["password"]:
            return JSONResponse({"detail": "Incorrect email or password"}, status_code=400)
        return JSONResponse({"access_token": "tok-" + "x" * 40, "token_type": "bearer"})

    return Starlette(routes=[
        Route("/api/v1/utils/health-check/", health),
        Route("/api/v1/login/access-token", login, methods=["POST"]),
    ])


def config(backend: str, database_url: str, migrations: str = "") -> str:
    return (
        f'backend_url = "{backend}"\nhealth_path = "/api/v1/utils/health-check/"\ntimeout = 2\n'
        f'database_url = "{database_url}"\n{migrations}'
        f'[auth]\nlogin_path = "/api/v1/login/access-token"\nstyle = "form"\nusername = "{SMOKE_USER}"\n'
        'password = "${SMOKE_PASSWORD}"\n'
    )


def sweep(pytester: pytest.Pytester, text: str, select: str = "db. or auth. or backend.",
          ) -> tuple[pytest.RunResult, dict[str, dict[str, Any]]]:
    pytester.makefile(".toml", opscheck=text)
    # (hypothesis's plugin left out of these in-process runs: seconds each)
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-k", select,
                                "--opscheck-json", "out.json")
    records = {r["id"]: r for r in json.loads((pytester.path / "out.json").read_text())["checks"]}
    assert PLANTED_DB_PASSWORD not in result.stdout.str() and SMOKE_PASSWORD not in result.stdout.str()
    return result, records


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCHECK_TEST_DB_PASSWORD", PLANTED_DB_PASSWORD)
    monkeypatch.setenv("SMOKE_PASSWORD", SMOKE_PASSWORD)


@pytest.fixture
def migrated(postgres: Postgres, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A database whose schema is the Alembic folder's head, with the smoke user in it."""
    name = make_database(postgres.url)
    folder = alembic_folder(tmp_path)
    with admin(postgres.url, name) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('tip')")
        conn.execute('CREATE TABLE "user" (email text PRIMARY KEY, hashed_password text)')
        conn.execute('INSERT INTO "user" VALUES (%s, %s)', (SMOKE_USER, SMOKE_PASSWORD))
        conn.execute('GRANT SELECT ON "user", alembic_version TO app')
    yield name, folder


def test_database_down_is_fixed_first_and_the_logins_500s_are_its_consequence(
    pytester: pytest.Pytester, postgres: Postgres
) -> None:
    down = f"postgresql://app:{PLANTED_DB_PASSWORD}@127.0.0.1:{free_port()}/app"
    with serving(db_login_app(down)) as backend:
        result, records = sweep(pytester, config(backend.url, down.replace(PLANTED_DB_PASSWORD,
                                                                           "${OPSCHECK_TEST_DB_PASSWORD}")))
    assert records["backend.health"]["outcome"] == "passed"
    assert records["db.reachable"]["outcome"] == "failed" and records["db.reachable"]["caused_by"] is None
    login = records["auth.login"]
    assert login["outcome"] == "failed" and "500" in login["message"]
    assert login["caused_by"] == "db.reachable"
    assert login["resolution"].startswith("Fix db.reachable first")
    result.stdout.fnmatch_lines(["*FAILED auth.login — caused by db.reachable*", "*; fix first: db.reachable"])


def test_migrations_behind_the_logins_500s_are_caused_by_the_migrations(
    pytester: pytest.Pytester, postgres: Postgres, migrated: tuple[str, Path]
) -> None:
    name, folder = migrated
    url = app_url(postgres.url, name)
    live = url.replace("${OPSCHECK_TEST_DB_PASSWORD}", PLANTED_DB_PASSWORD)
    migrations = f'migrations = {{ tool = "alembic", script_location = "{folder}" }}\n'
    with serving(db_login_app(live)) as backend:
        _, healthy = sweep(pytester, config(backend.url, url, migrations))
        assert healthy["auth.login"]["outcome"] == "passed", healthy["auth.login"]
        assert healthy["db.migrations_current"]["outcome"] == "passed"
        # The deploy's last migrations never ran: the schema is at `base`, the user table came later.
        with admin(postgres.url, name) as conn:
            conn.execute("UPDATE alembic_version SET version_num = 'base'")
            conn.execute('DROP TABLE "user"')
        result, records = sweep(pytester, config(backend.url, url, migrations))
    assert records["db.reachable"]["outcome"] == "passed"
    assert records["db.migrations_current"]["outcome"] == "failed"
    assert records["db.migrations_current"]["caused_by"] is None
    assert records["auth.login"]["outcome"] == "failed" and "500" in records["auth.login"]["message"]
    assert records["auth.login"]["caused_by"] == "db.migrations_current"
    result.stdout.fnmatch_lines(["*fix first: db.migrations_current*"])


# The cases below rest on the HTTP, login and WebSocket probes' own facts: a 5xx body's error signatures
# (`facts.answered`), a request with no answer in time (`facts.timed_out`), a process not answering (`facts.down`).


def schema_app(database_url: str) -> Any:
    """A backend whose health endpoint reads a table and whose errors answer 500 with the exception's text (as
    many apps' exception handlers do: {"detail": str(exc)})."""
    import psycopg
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def health(request: Request) -> Response:
        try:
            with psycopg.connect(database_url, connect_timeout=2) as conn:
                conn.execute("SELECT count(*) FROM item").fetchone()
        except psycopg.Error as exc:
            return JSONResponse({"detail": str(exc)}, status_code=500)
        return JSONResponse(True)

    return Starlette(routes=[Route("/api/v1/utils/health-check/", health)])


def test_migrations_behind_are_the_root_of_a_health_endpoint_whose_500_names_the_table(
    pytester: pytest.Pytester, postgres: Postgres, migrated: tuple[str, Path]
) -> None:
    name, folder = migrated
    url = app_url(postgres.url, name)
    with admin(postgres.url, name) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'base'")  # the item table came later
    migrations = f'migrations = {{ tool = "alembic", script_location = "{folder}" }}\n'
    with serving(schema_app(url.replace("${OPSCHECK_TEST_DB_PASSWORD}", PLANTED_DB_PASSWORD))) as backend:
        result, records = sweep(pytester, config(backend.url, url, migrations),
                                "backend.health or db.migrations or db.reachable")
    assert records["backend.health"]["outcome"] == "failed" and "500" in records["backend.health"]["message"]
    assert records["backend.health"]["caused_by"] == "db.migrations_current"
    result.stdout.fnmatch_lines(["*; fix first: db.migrations_current"])


def test_a_backend_down_and_its_websocket_on_the_same_origin_are_one_root(pytester: pytest.Pytester) -> None:
    port = free_port()
    pytester.makefile(".toml", opscheck=f'backend_url = "http://127.0.0.1:{port}"\ntimeout = 2\n'
                                        f'websocket_url = "ws://localhost:{port}/ws"\n')
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                                "-k", "backend.health or ws.handshake", "--opscheck-json", "out.json")
    records = {r["id"]: r for r in json.loads((pytester.path / "out.json").read_text())["checks"]}
    assert records["backend.health"]["caused_by"] is None
    assert records["ws.handshake"]["caused_by"] == "backend.health"
    result.stdout.fnmatch_lines(["*; fix first: backend.health"])


def test_a_held_lock_is_the_root_of_the_login_that_times_out_behind_it(
    pytester: pytest.Pytester, postgres: Postgres, migrated: tuple[str, Path]
) -> None:
    name, _ = migrated
    url = app_url(postgres.url, name)
    holder = admin(postgres.url, name)
    holder.autocommit = False
    holder.execute('LOCK TABLE "user" IN ACCESS EXCLUSIVE MODE')  # a session idle in its transaction, holding it
    pid = holder.info.backend_pid
    try:
        with serving(db_login_app(url.replace("${OPSCHECK_TEST_DB_PASSWORD}", PLANTED_DB_PASSWORD))) as backend:
            result, records = sweep(pytester, config(backend.url, url), "auth.login or db.no_long or db.reachable")
    finally:
        holder.rollback()
        holder.close()
    assert records["db.no_long_transactions"]["outcome"] == "failed"
    assert f"held by pid {pid}" in records["db.no_long_transactions"]["message"]
    assert records["auth.login"]["outcome"] == "failed"
    assert records["auth.login"]["caused_by"] == "db.no_long_transactions"
    result.stdout.fnmatch_lines(["*; fix first: db.no_long_transactions"])
