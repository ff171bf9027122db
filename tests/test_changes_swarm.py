"""What changed since the last green sweep on a real Docker Swarm stack (`swarmbed`'s swarm): a service updated to a
new image is listed, with its spec version, and the failure of that service gets `docker service rollback`."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from realservices import BUSYBOX_TAG
from swarmbed import SwarmEngine, swarm

from pytest_opscheck import targets as targets_module
from pytest_opscheck.changes import History
from pytest_opscheck.config import settings_from_table
from pytest_opscheck.model import CheckRecord, Summary, summarize

__all__ = ["swarm"]  # the fixture, imported for these tests

PLANTED = "PLANTED-swarm-changes-secret-5a4b3c2d"
JWT_BEFORE, JWT_AFTER = "PLANTED-swarm-jwt-one-77aa", "PLANTED-swarm-jwt-two-88bb"
STACK = f"""version: "3.8"
services:
  web:
    image: {BUSYBOX_TAG}
    stop_grace_period: 1s
    command: sleep 3600
    networks: [hostnet]
    environment:
      SECRET_KEY: "{PLANTED}"
    secrets: [jwt]
secrets:
  jwt:
    file: ./NAME-jwt.txt
"""


@pytest.fixture
def on_swarm(swarm: SwarmEngine, monkeypatch: pytest.MonkeyPatch) -> Iterator[SwarmEngine]:
    monkeypatch.setenv("DOCKER_HOST", swarm.host)
    yield swarm


def sweep(history: History, settings: Any, outcome: str, token: bool = False) -> Summary:
    builtin = getattr(targets_module, "BUILTIN", None)
    targets = targets_module.Targets(settings, builtin) if builtin is not None else targets_module.Targets(settings)
    targets.prefetch()
    try:
        checks = [CheckRecord("stack.healthchecks", "x::stack.healthchecks", "P1", outcome, 0.1, "", "Steps",
                              service="web")]
        if token:
            checks.append(CheckRecord("auth.token_accepted", "x::auth.token_accepted", "P2", outcome, 0.1, "",
                                      "Steps", service="web"))
        return history.update(summarize(checks), targets)
    finally:
        targets.close()


def test_service_updated_to_a_new_image_gets_the_swarm_rollback(on_swarm: SwarmEngine, tmp_path: Path) -> None:
    client = on_swarm.client()
    try:
        dockerfile = io.BytesIO(f"FROM {BUSYBOX_TAG}\nLABEL opscheck.release=2\n".encode())
        client.images.build(fileobj=dockerfile, tag="opscheck-changes:2", rm=True)
    finally:
        client.close()
    name = f"chg{uuid.uuid4().hex[:6]}"
    (on_swarm.root / "stacks" / f"{name}-jwt.txt").write_text(JWT_BEFORE)
    (on_swarm.root / "stacks" / f"{name}-jwt2.txt").write_text(JWT_AFTER)
    on_swarm.deploy(name, STACK.replace("NAME", name))
    settings = settings_from_table({"swarm_stack": name}, tmp_path / "opscheck.toml")
    state = tmp_path / "state.json"
    history = History(state, settings)
    green = sweep(history, settings, "passed")
    assert green.changes == ()

    # a new image, and the JWT key rotated the Swarm way: a new secret object in place of the old one
    on_swarm.cli("secret", "create", f"{name}_jwt2", str(on_swarm.root / "stacks" / f"{name}-jwt2.txt"))
    on_swarm.cli("service", "update", "--detach", "--no-resolve-image", "--image", "opscheck-changes:2",
                 "--secret-rm", f"{name}_jwt", "--secret-add", f"source={name}_jwt2,target=jwt", f"{name}_web")
    failing = sweep(history, settings, "failed", token=True)
    changes = {c.what: c for c in failing.changes}
    image = changes["web: image"]
    assert image.before == BUSYBOX_TAG and image.after == "opscheck-changes:2"
    version = changes["web: spec version"]
    assert int(version.after or 0) > int(version.before or 0)
    rotated = changes["web: secret file /run/secrets/jwt changed"]
    assert rotated.after is not None and "tokens issued before" in rotated.after
    token_steps = next(r for r in failing.failed if r.check_id == "auth.token_accepted").resolution
    assert "/run/secrets/jwt of web changed at" in token_steps
    steps = next(r for r in failing.failed if r.check_id == "stack.healthchecks").resolution
    assert f"before it ran {BUSYBOX_TAG}" in steps
    assert f"docker service rollback {name}_web" in steps
    assert f"docker service update --image {BUSYBOX_TAG} {name}_web" in steps
    outputs = state.read_text() + steps + token_steps + repr(failing.changes)
    assert all(p not in outputs for p in (PLANTED, JWT_BEFORE, JWT_AFTER))
