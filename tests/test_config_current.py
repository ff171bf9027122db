"""stack.config_current on real Compose projects: current after `up`, stale once `.env` is edited (the service
and the command named, no value shown), and never failed on a value `up` took from a shell the sweep lacks."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import unavailable
from realservices import ComposeProject, ServiceUnavailable, ensure_compose_plugin

PLANTED = "PLANTED-config-secret-0123456789abcdef"
EDITED = "PLANTED-config-secret-edited-9876543210"
SWEEP = ("--opscheck", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-k", "stack.config_current",
         "--opscheck-json", "out.json")
YAML = """
name: {name}
services:
  app:
    image: {image}
    network_mode: none
    command: sleep 3600
    environment:
      APP_MODE: ${{APP_MODE}}
      SECRET_KEY: ${{SECRET_KEY}}
      FROM_SHELL: ${{OPSCHECK_TEST_FROM_SHELL:-none}}
  worker:
    image: {image}
    network_mode: none
    command: sleep 3600
"""


@pytest.fixture(scope="module")
def project(
    docker_engine: Any, busybox_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., ComposeProject]]:
    """`project(env_text, shell={...})`: a Compose project brought up from its folder's .env (and `shell`'s
    variables in the environment of `up`); every one torn down at the end."""
    try:
        ensure_compose_plugin()
    except ServiceUnavailable as exc:
        unavailable(str(exc))
    made: list[ComposeProject] = []

    def up(env_text: str, shell: dict[str, str] | None = None) -> ComposeProject:
        name = f"opscfg{uuid.uuid4().hex[:6]}"
        folder = tmp_path_factory.mktemp("config")
        (folder / ".env").write_text(env_text)
        compose = ComposeProject(name, folder)
        made.append(compose)
        with pytest.MonkeyPatch.context() as patch:
            for key, value in (shell or {}).items():
                patch.setenv(key, value)
            compose.up(YAML.format(name=name, image=busybox_image))
        return compose

    try:
        yield up
    finally:
        for compose in made:
            compose.down()


def sweep(pytester: pytest.Pytester, config: str) -> dict[str, Any]:
    pytester.makefile(".toml", opscheck=config)
    started = time.monotonic()
    result = pytester.runpytest(*SWEEP)
    assert time.monotonic() - started < 30
    text = (pytester.path / "out.json").read_text()
    outputs = result.stdout.str() + result.stderr.str() + text + (pytester.path / "opscheck-report.html").read_text()
    for secret in (PLANTED, EDITED, "0123456789abcdef"):
        assert secret not in outputs
    return {c["id"]: c for c in json.loads(text)["checks"]}["stack.config_current"]


def test_current_after_up_and_stale_once_env_is_edited(
    pytester: pytest.Pytester, project: Callable[..., ComposeProject]
) -> None:
    compose = project(f"APP_MODE=one\nSECRET_KEY={PLANTED}\n")
    for config in (f'compose_project = "{compose.name}"\n', f'compose_file = "{compose.compose_file}"\n'):
        record = sweep(pytester, config)
        assert record["outcome"] == "passed", record
        assert f"{compose.name}-app-1" in record["evidence"]["config hash"]
        assert "from the labels of its containers" in record["evidence"]["compared with"]

    # "I fixed SECRET_KEY in .env and it still fails": the running container still has the old one.
    (compose.workdir / ".env").write_text(f"APP_MODE=two\nSECRET_KEY={EDITED}\n")
    record = sweep(pytester, f'compose_project = "{compose.name}"\n')
    assert record["outcome"] == "failed"
    assert record["message"] == (
        "running with a configuration older than today's compose files and .env: "
        f"app ({compose.name}-app-1): created with another APP_MODE (set from .env's APP_MODE), SECRET_KEY (set "
        "from .env's SECRET_KEY); docker compose up -d app recreates them"
    )
    evidence = record["evidence"]
    assert f"docker compose -p {compose.name} up -d app" in evidence["commands to run"]
    assert "worker" not in evidence["commands to run"]  # it interpolates nothing: still current
    assert f"{compose.name}-worker-1" in evidence["config hash"]
    assert "up -d" in record["resolution"]


def test_a_value_from_a_shell_the_sweep_lacks_is_said_not_failed(
    pytester: pytest.Pytester, project: Callable[..., ComposeProject], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPSCHECK_TEST_FROM_SHELL", raising=False)
    compose = project(f"APP_MODE=one\nSECRET_KEY={PLANTED}\n", shell={"OPSCHECK_TEST_FROM_SHELL": "exported"})
    record = sweep(pytester, f'compose_project = "{compose.name}"\n')
    assert record["outcome"] == "passed", record  # the worker is compared; the app cannot be
    assert record["evidence"]["not compared"] == (
        f"app ({compose.name}-app-1): cannot tell: FROM_SHELL differs and interpolates OPSCHECK_TEST_FROM_SHELL, "
        "set neither in .env nor in this shell"
    )

    # What it can reproduce still counts: an edited .env is stale, whatever the shell had.
    (compose.workdir / ".env").write_text(f"APP_MODE=two\nSECRET_KEY={PLANTED}\n")
    record = sweep(pytester, f'compose_project = "{compose.name}"\n')
    assert record["outcome"] == "failed"
    assert "created with another APP_MODE (set from .env's APP_MODE)" in record["message"]


def test_files_not_on_this_machine_skip_with_the_reason(
    pytester: pytest.Pytester, project: Callable[..., ComposeProject], tmp_path: Path
) -> None:
    compose = project(f"APP_MODE=one\nSECRET_KEY={PLANTED}\n")
    moved = tmp_path / "elsewhere.yml"
    compose.compose_file.rename(moved)
    try:
        record = sweep(pytester, f'compose_project = "{compose.name}"\n')
    finally:
        moved.rename(compose.compose_file)
    assert record["outcome"] == "skipped"
    assert record["message"] == (
        f"cannot compute today's config hash: the compose files the project was created from "
        f"({compose.compose_file}) are not on this machine, and no compose_file"
    )
