"""Fixtures for real services: a Docker engine with Compose v2, a busybox image, PostgreSQL.

Missing services skip their tests loudly on a developer's machine and fail them in CI (CI is set).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from realservices import (
    ComposeProject,
    Postgres,
    ServiceUnavailable,
    ensure_busybox_image,
    ensure_compose_plugin,
    ensure_docker_engine,
    start_postgres,
)
from realservices import (
    free_port as _free_port,
)

pytest_plugins = ["pytester"]


def unavailable(message: str) -> None:
    """Fail in CI, skip loudly elsewhere."""
    __tracebackhide__ = True
    if os.environ.get("CI"):
        pytest.fail(f"real service missing in CI: {message}", pytrace=False)
    pytest.skip(f"REAL SERVICE MISSING: {message}")


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Any]:
    """A Docker SDK client on a real engine (started here when none runs, stopped at the end)."""
    import docker

    try:
        engine = ensure_docker_engine()
    except ServiceUnavailable as exc:
        unavailable(str(exc))
        raise
    client = docker.from_env(timeout=30)
    try:
        yield client
    finally:
        client.close()
        engine.stop()


@pytest.fixture(scope="session")
def busybox_image(docker_engine: Any) -> str:
    """The tag of a local busybox image."""
    try:
        return ensure_busybox_image(docker_engine)
    except ServiceUnavailable as exc:
        unavailable(str(exc))
        raise


@pytest.fixture(scope="session")
def compose_stack(
    docker_engine: Any, busybox_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., str]]:
    """Bring up a Compose project from YAML text: `compose_stack(yaml, name=None) -> project name`."""
    try:
        ensure_compose_plugin()
    except ServiceUnavailable as exc:
        unavailable(str(exc))
    projects: list[ComposeProject] = []

    def up(compose_yaml: str, name: str | None = None) -> str:
        project = ComposeProject(name or f"opscheck-{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("compose"))
        projects.append(project)
        project.up(compose_yaml.replace("${BUSYBOX}", busybox_image))
        return project.name

    try:
        yield up
    finally:
        for project in projects:
            project.down()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL server (superuser URL in `.url`), with pg_stat_statements preloaded."""
    try:
        server = start_postgres()
    except (ServiceUnavailable, OSError) as exc:
        unavailable(str(exc))
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    return _free_port()

