"""`.env` values that reference other variables, expanded as Docker Compose expands them.

Compose itself is the reference: the same `.env` read by `docker compose config --environment` and by the
plugin gives the same values. Then a sweep whose database_url comes from a `.env` DATABASE_URL built from
`${POSTGRES_USER}`, `${POSTGRES_PASSWORD}` and `${POSTGRES_DB:-...}` reaches a real PostgreSQL; the broken
side (a default that is not the password) is named for what it is, and a `${NAME:?message}` Compose refuses
is a one-line usage error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import unavailable
from dbhelpers import PLANTED_DB_PASSWORD, make_database
from realservices import Postgres

from pytest_opscheck.config.env import EnvFileError, read_env_file

DOTENV = r"""# the stack's .env
POSTGRES_USER=app
export POSTGRES_DB=shop
POSTGRES_PASSWORD='pa$$w0rd'
DATABASE_URL=postgresql://${POSTGRES_USER}:${POSTGRES_PASSWORD}@db:5432/${POSTGRES_DB}
BARE=$POSTGRES_USER/x
EMPTY=
SOFT=${EMPTY:-soft}
HARD=${EMPTY-hard}
UNSET_SOFT=${NOPE:-d1}
UNSET_HARD=${NOPE-d2}
NESTED=${NOPE:-${POSTGRES_USER}-nested}
ALTERNATIVE=${POSTGRES_USER:+set}
NO_ALTERNATIVE=${EMPTY:+not-shown}
LITERAL='${POSTGRES_USER} $POSTGRES_USER'
DOLLARS=a$$b
QUOTED="x ${POSTGRES_USER} \$POSTGRES_USER y"
COMMENTED=value # a comment
HASH=val#ue
FROM_SHELL=${SHELL_ONLY}
SHELL_WINS=${SHADOWED}
SHADOWED=from-file
REQUIRED=${POSTGRES_USER:?must be set}
"""


def test_expanded_as_compose_expands_it(tmp_path: Path) -> None:
    if shutil.which("docker") is None or subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                        check=False).returncode != 0:
        unavailable("the docker CLI with its compose plugin (apt-get install docker-compose-plugin)")
    (tmp_path / ".env").write_text(DOTENV)
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    image: busybox\n")
    shell = {"SHELL_ONLY": "from-shell", "SHADOWED": "from-shell"}
    done = subprocess.run(
        ["docker", "compose", "config", "--environment"], cwd=tmp_path, capture_output=True, text=True, check=True,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **shell}, timeout=60,
    )
    compose = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    ours = read_env_file(tmp_path / ".env", shell)
    assert ours == {k: compose[k] for k in ours if k not in shell} | {k: ours[k] for k in shell if k in ours}
    assert ours["DATABASE_URL"] == "postgresql://app:pa$$w0rd@db:5432/shop"
    assert (ours["NESTED"], ours["LITERAL"], ours["DOLLARS"], ours["QUOTED"]) == (
        "app-nested", "${POSTGRES_USER} $POSTGRES_USER", "a$b", "x app $POSTGRES_USER y")
    assert (ours["FROM_SHELL"], ours["SHELL_WINS"]) == ("from-shell", "from-shell")


def test_a_required_variable_unset_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("URL=postgresql://${DB_USER:?set DB_USER in .env}@db/app\n")
    with pytest.raises(EnvFileError, match=r"^URL: required variable DB_USER is missing a value: set DB_USER"):
        read_env_file(tmp_path / ".env", {})


def sweep(pytester: pytest.Pytester, dotenv: str) -> tuple[pytest.RunResult, dict[str, dict[str, str]]]:
    (pytester.path / ".env").write_text(dotenv)
    pytester.makefile(".toml", opscheck='database_url = "${DATABASE_URL}"\n')
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-k", "db.reachable",
                                "--opscheck-json", "out.json")
    out = pytester.path / "out.json"
    records = {r["id"]: r for r in json.loads(out.read_text())["checks"]} if out.exists() else {}
    assert PLANTED_DB_PASSWORD not in result.stdout.str() + result.stderr.str() + (out.read_text() if records else "")
    return result, records


def test_nested_references_reach_the_database(
    pytester: pytest.Pytester, postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DATABASE_URL", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "POSTGRES_PORT"):
        monkeypatch.delenv(name, raising=False)
    name = make_database(postgres.url)
    dotenv = (
        "POSTGRES_USER=app\n"
        f"POSTGRES_PASSWORD={PLANTED_DB_PASSWORD}\n"
        f"POSTGRES_PORT={postgres.port}\n"
        "DATABASE_URL=postgresql://${POSTGRES_USER}:${POSTGRES_PASSWORD}@127.0.0.1:${POSTGRES_PORT:-5432}/"
        f"${{POSTGRES_DB:-{name}}}\n"
    )
    _, records = sweep(pytester, dotenv)
    assert records["db.reachable"]["outcome"] == "passed", records["db.reachable"]

    # the template's own default when the password line is gone: refused, and named as such
    broken = dotenv.replace(f"POSTGRES_PASSWORD={PLANTED_DB_PASSWORD}\n", "").replace(
        "${POSTGRES_PASSWORD}", "${POSTGRES_PASSWORD:-changethis}")
    _, records = sweep(pytester, broken)
    assert records["db.reachable"]["message"] == f"db: authentication failed for user app on 127.0.0.1:{postgres.port}"

    # the environment wins over the file, in references too (as Compose does)
    monkeypatch.setenv("POSTGRES_PASSWORD", PLANTED_DB_PASSWORD)
    _, records = sweep(pytester, broken)
    assert records["db.reachable"]["outcome"] == "passed", records["db.reachable"]


def test_required_reference_unset_is_a_usage_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POSTGRES_PASSWORD", raising=False)
    result, _ = sweep(pytester, "DATABASE_URL=postgresql://app:${POSTGRES_PASSWORD:?Variable not set}@db/app\n")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    line = next(line for line in result.stderr.str().splitlines() if "env_file" in line)
    assert line.endswith(
        ".env: DATABASE_URL: required variable POSTGRES_PASSWORD is missing a value: Variable not set "
        "(Compose refuses it too)"
    )
