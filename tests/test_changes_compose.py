"""What changed since the last green sweep, on a real Compose project: a redeploy to a new image tag with one
environment value changed, a secret file rotated under a running backend, and a green sweep resetting the baseline.

The sweep's fingerprint is taken from the real stack handle (`Targets` opened as a sweep opens them); the summaries
are the sweep's model (`summarize` of records), as the core hands them to `History.update` at the sweep's end.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_opscheck import targets as targets_module
from pytest_opscheck.changes import History
from pytest_opscheck.config import settings_from_table
from pytest_opscheck.model import CheckRecord, Deploy, Fact, Summary, summarize

PLANTED_BEFORE = "PLANTED-secret-key-before-7d3a9c"
PLANTED_AFTER = "PLANTED-secret-key-after-41be0f"
JWT_BEFORE = "PLANTED-jwt-signing-key-one-0a1b2c3d"
JWT_AFTER = "PLANTED-jwt-signing-key-two-4e5f6a7b"
PLANTED = (PLANTED_BEFORE, PLANTED_AFTER, JWT_BEFORE, JWT_AFTER)


def stack_yaml(name: str, tag: str, secret_key: str, domain: bool = True) -> str:
    domain_line = "DOMAIN: example.test" if domain else ""
    return f"""
name: {name}
services:
  backend:
    image: opscheck-changes:{tag}
    network_mode: none
    command: sleep 3600
    stop_signal: SIGKILL  # sleep ignores SIGTERM: a redeploy would wait 10 s per container
    environment:
      SECRET_KEY: "{secret_key}"
      {domain_line}
    secrets: [jwt]
  db:
    image: opscheck-changes:1
    network_mode: none
    command: sleep 3600
    stop_signal: SIGKILL  # sleep ignores SIGTERM: a redeploy would wait 10 s per container
secrets:
  jwt:
    file: ./jwt.txt
"""


@pytest.fixture(scope="module")
def images(docker_engine: Any, busybox_image: str) -> dict[str, str]:
    """Two tags of two different images: 1 is busybox, 2 is built on it (a label), so their ids differ."""
    docker_engine.images.get(busybox_image).tag("opscheck-changes", "1")
    # release 2 sets variables of its own, as base images do (python's GPG_KEY, a longer PATH)
    dockerfile = io.BytesIO(f"FROM {busybox_image}\nLABEL opscheck.release=2\n"
                            "ENV GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D PATH=/bin:/usr/local/bin\n".encode())
    image, _ = docker_engine.images.build(fileobj=dockerfile, tag="opscheck-changes:2", rm=True)
    return {"1": docker_engine.images.get("opscheck-changes:1").id, "2": image.id}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, compose_stack: Any, images: dict[str, str]) -> Iterator[Any]:
    """`deploy(tag, secret_key)`: `docker compose up -d` of the project in one folder (a redeploy recreates what
    changed); yields the deploy function with `.name` and `.folder`."""
    from realservices import ComposeProject

    name = f"opschg{uuid.uuid4().hex[:6]}"
    folder = tmp_path_factory.mktemp("changes")
    (folder / "jwt.txt").write_text(JWT_BEFORE)
    compose = ComposeProject(name, folder)  # compose_stack: the engine and Compose v2 are there

    def deploy(tag: str, secret_key: str, domain: bool = True) -> None:
        compose.up(stack_yaml(name, tag, secret_key, domain))

    deploy.name = name  # type: ignore[attr-defined]
    deploy.folder = folder  # type: ignore[attr-defined]
    deploy("1", PLANTED_BEFORE)
    try:
        yield deploy
    finally:
        compose.down()


def record(check_id: str, outcome: str, service: str | None = None, deploys: tuple[Deploy, ...] = (),
           facts: tuple[Fact, ...] = ()) -> CheckRecord:
    return CheckRecord(check_id, f"checks/test_x.py::{check_id}", "P2", outcome, 0.1,
                       "fails" if outcome == "failed" else "", f"Steps for {check_id}", service=service,
                       deploys=deploys, facts=facts)


def open_targets(settings: Any) -> Any:
    """The built-in targets, opening as a sweep opens them."""
    builtin = getattr(targets_module, "BUILTIN", None)  # declared through the targets hook (core, issue 22)
    targets = targets_module.Targets(settings, builtin) if builtin is not None else targets_module.Targets(settings)
    targets.prefetch()
    return targets


def sweep(history: History, settings: Any, records: list[CheckRecord]) -> Summary:
    """One sweep's end: the targets opened as a sweep opens them, the summary, `History.update`."""
    targets = open_targets(settings)
    try:
        return history.update(summarize(records), targets)
    finally:
        targets.close()


def everything(summary: Summary, state: Path) -> str:
    texts = [state.read_text(), *(r.resolution for r in summary.records),
             json.dumps([c.__dict__ for c in summary.changes])]
    return "\n".join(texts)


def test_redeploy_secret_rotation_and_green_reset(project: Any, tmp_path: Path, images: dict[str, str]) -> None:
    settings = settings_from_table({"compose_project": project.name}, tmp_path / "opscheck.toml")
    state = tmp_path / "state.json"
    history = History(state, settings)

    green = sweep(history, settings, [record("stack.services_running", "passed")])
    assert green.changes == () and green.last_green is not None

    # a redeploy: a new image tag and one environment value changed
    project("2", PLANTED_AFTER)
    # a sweep with no verdict (every check skipped) explains nothing and is not green
    skipped = sweep(history, settings, [record("stack.services_running", "skipped")])
    assert skipped.changes == () and skipped.last_green == green.last_green
    deploy = Deploy("backend", f"{project.name}-backend-1", "opscheck-changes:2", "now")
    failing = sweep(history, settings, [record("api.no_server_errors", "failed", "backend", (deploy,)),
                                        record("db.reachable", "failed", "db"),
                                        record("stack.services_running", "passed")])
    assert failing.last_green == green.last_green
    changes = {c.what: c for c in failing.changes}
    image = changes["backend: image"]
    assert image.before == f"opscheck-changes:1 ({images['1'].split(':')[1][:12]})"
    assert image.after == f"opscheck-changes:2 ({images['2'].split(':')[1][:12]})"
    assert changes["backend: secret SECRET_KEY changed"].before == "(earlier value)"
    assert "backend: variable DOMAIN changed" not in changes  # unchanged: not listed
    assert not [c for c in changes if "PATH" in c or "GPG_KEY" in c]  # the image's own: they came with it
    assert "backend: container created again" in changes and "backend: config hash" in changes
    assert not any(c.startswith("db:") for c in changes)  # not redeployed
    assert [c.at for c in failing.changes] == sorted((c.at for c in failing.changes), reverse=True)
    # the failure of the backend gets the rollback, the database's does not
    by_id = {r.check_id: r for r in failing.failed}
    resolution = by_id["api.no_server_errors"].resolution
    assert resolution.startswith("Steps for api.no_server_errors\n")
    assert "before it ran opscheck-changes:1" in resolution
    assert f"docker compose -p {project.name} up -d --no-deps backend" in resolution
    assert by_id["db.reachable"].resolution == "Steps for db.reachable"
    assert all(p not in everything(failing, state) for p in PLANTED)

    # a JWT key rotated under the running backend (a Compose secret file): the token check's failure names it
    (project.folder / "jwt.txt").write_text(JWT_AFTER)
    tokens = sweep(history, settings, [record("auth.token_accepted", "failed", "backend"),
                                       record("stack.services_running", "passed")])
    rotated = next(c for c in tokens.changes if c.what == "backend: secret file /run/secrets/jwt changed")
    assert rotated.after is not None and "tokens issued before" in rotated.after
    assert tokens.changes[0] == rotated  # the newest
    token_steps = tokens.failed[0].resolution
    assert f"/run/secrets/jwt of backend changed at {rotated.at[11:16]} UTC" in token_steps  # type: ignore[index]
    assert f"tokens issued before {rotated.at[11:16]} UTC are refused" in token_steps  # type: ignore[index]
    assert all(p not in everything(tokens, state) for p in PLANTED)

    # a green sweep resets the baseline: the next failure lists nothing from before it
    reset = sweep(history, settings, [record("stack.services_running", "passed")])
    after_reset = sweep(history, settings, [record("api.no_server_errors", "failed", "backend")])
    assert after_reset.last_green == reset.last_green and after_reset.last_green != green.last_green
    assert after_reset.changes == ()
    assert after_reset.failed[0].resolution == "Steps for api.no_server_errors"
    assert all(p not in state.read_text() for p in PLANTED)


def test_baseline_records_the_state_on_purpose(project: Any, tmp_path: Path) -> None:
    """--opscheck-baseline: a failing sweep's state becomes the known good one; the next failure compares with it."""
    settings = settings_from_table({"compose_project": project.name}, tmp_path / "opscheck.toml")
    state = tmp_path / "state.json"
    first = sweep(History(state, settings, baseline=True), settings, [record("db.reachable", "failed", "db")])
    assert first.changes == () and first.last_green is not None
    second = sweep(History(state, settings), settings, [record("db.reachable", "failed", "db")])
    assert second.last_green == first.last_green and second.changes == ()


def test_database_left_ahead_by_a_rollback_names_the_release_that_brought_its_head(
    project: Any, postgres: Any, tmp_path: Path
) -> None:
    """Release 2 ran a migration and the sweep after it was green; the code was rolled back to release 1 and the
    database stayed ahead: the failure of db.migrations_current names release 2 as the one that brought the head."""
    from dbhelpers import PLANTED_DB_PASSWORD, admin, app_url, make_database

    name = make_database(postgres.url)
    with admin(postgres.url, name) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('bbbb')")  # release 2's migration
    table = {"compose_project": project.name, "database_url": app_url(postgres.url, name)}
    settings = settings_from_table(table, tmp_path / "opscheck.toml",
                                   environ={"OPSCHECK_TEST_DB_PASSWORD": PLANTED_DB_PASSWORD})
    history = History(tmp_path / "state.json", settings)
    project("2", PLANTED_AFTER)
    sweep(history, settings, [record("db.migrations_current", "passed", "db")])

    project("1", PLANTED_BEFORE)  # rolled back: the database stays at bbbb
    ahead = Fact("migrations_ahead", name, "at bbbb")
    failing = sweep(history, settings, [record("db.migrations_current", "failed", "db", facts=(ahead,))])
    steps = failing.failed[0].resolution
    assert "The database's head, alembic bbbb, was first seen at" in steps
    assert "when backend ran opscheck-changes:2" in steps and "the release that brought it" in steps
    assert "backend: image" in [c.what for c in failing.changes]
    assert PLANTED_DB_PASSWORD not in (tmp_path / "state.json").read_text()


def test_a_real_sweep_lists_the_redeploy_in_its_json(pytester: pytest.Pytester, project: Any) -> None:
    """`pytest --opscheck --opscheck-state`: green, then a redeploy to tag 2 that drops DOMAIN and changes the
    secret key: the failing sweep's JSON lists what changed, and the failure's resolution the rollback."""
    project("1", PLANTED_BEFORE)
    pytester.makefile(".toml", opscheck=f'compose_project = "{project.name}"\n'
                                        'required_env = { backend = ["SECRET_KEY", "DOMAIN"] }\n')
    run = ("--opscheck", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-k", "stack.required_env",
           "--opscheck-state", "state.json", "--opscheck-json", "out.json", "--opscheck-postmortem", "postmortem.md")
    green = pytester.runpytest(*run)
    assert green.ret == 0, green.stdout.str()
    first = json.loads((pytester.path / "out.json").read_text())
    assert first["changes"] == [] and first["last_green"] is not None

    project("2", PLANTED_AFTER, domain=False)
    failing = pytester.runpytest(*run)
    assert failing.ret == 1
    out = json.loads((pytester.path / "out.json").read_text())
    assert out["last_green"] == first["last_green"]
    whats = [c["what"] for c in out["changes"]]
    assert {"backend: image", "backend: secret SECRET_KEY changed", "backend: variable DOMAIN removed"} <= set(whats)
    assert all(set(c) == {"what", "before", "after", "at"} for c in out["changes"])
    check = next(c for c in out["checks"] if c["id"] == "stack.required_env")
    assert check["outcome"] == "failed"
    assert "before it ran opscheck-changes:1" in check["resolution"]
    assert f"docker compose -p {project.name} up -d --no-deps backend" in check["resolution"]
    outputs = failing.stdout.str() + failing.stderr.str() + (pytester.path / "out.json").read_text()
    outputs += (pytester.path / "state.json").read_text() + (pytester.path / "opscheck-report.html").read_text()
    outputs += (pytester.path / "postmortem.md").read_text()
    assert all(p not in outputs for p in PLANTED)
    # the core hands the same changes to every reporter
    assert "backend: image" in failing.stdout.str()
    assert "backend: image" in (pytester.path / "opscheck-report.html").read_text()
    assert "backend: image" in (pytester.path / "postmortem.md").read_text()
