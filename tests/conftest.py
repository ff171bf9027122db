"""Fixtures for real services: a Docker engine with Compose v2, a busybox image, PostgreSQL.

A service that cannot be provided fails its tests in CI (env CI non-empty) and skips them loudly elsewhere,
with a message saying exactly what is missing.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest
from realservices import (
    DOCKER_CONFIG,
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
# The docker CLI of a sweep (`docker compose config`) finds its plugins where the tests' own CLI does, though
# pytester moves HOME for the runs it makes.
os.environ.setdefault("DOCKER_CONFIG", DOCKER_CONFIG)

# Import the docker SDK (and with it requests, http.cookiejar) once, up front: pytester's in-process runs drop the
# modules first imported inside them, and a docker client made from a half re-imported requests then fails every
# call ("You can only merge into CookieJar").
with contextlib.suppress(ImportError):
    import docker  # noqa: F401


def unavailable(message: str) -> NoReturn:
    """Fail in CI, skip loudly elsewhere."""
    __tracebackhide__ = True
    if os.environ.get("CI"):
        pytest.fail(f"REAL SERVICE MISSING IN CI: {message}", pytrace=False)
    pytest.skip(f"REAL SERVICE MISSING (skipped; CI fails here instead): {message}")


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Any]:
    """A docker SDK client on a real engine (dockerd started here when none answers, stopped at session end)."""
    try:
        engine = ensure_docker_engine()
    except ServiceUnavailable as exc:
        unavailable(str(exc))
    client = engine.client()
    try:
        yield client
    finally:
        client.close()
        engine.stop()


@pytest.fixture(scope="session")
def busybox_image(docker_engine: Any) -> str:
    """The tag of a local busybox image (imported from /bin/busybox when missing)."""
    try:
        return ensure_busybox_image(docker_engine)
    except ServiceUnavailable as exc:
        unavailable(str(exc))


@pytest.fixture(scope="session")
def compose_stack(
    docker_engine: Any, busybox_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., str]]:
    """`compose_stack(yaml_text, name=None) -> project name`: `docker compose up -d` of the YAML.

    `${BUSYBOX}` in the YAML stands for the busybox image. Every project started is torn down at session end.
    """
    try:
        ensure_compose_plugin()
    except ServiceUnavailable as exc:
        unavailable(str(exc))
    projects: list[ComposeProject] = []

    def up(compose_yaml: str, name: str | None = None, wait_seconds: float = 120) -> str:
        project = ComposeProject(name or f"opscheck-{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("compose"))
        projects.append(project)
        project.up(compose_yaml.replace("${BUSYBOX}", busybox_image), wait_seconds)
        return project.name

    try:
        yield up
    finally:
        failures = []
        for project in reversed(projects):
            try:
                project.down()
            except Exception as exc:  # noqa: BLE001 - tear every project down, then report
                failures.append(str(exc))
        if failures:
            raise RuntimeError("compose teardown left projects behind: " + "; ".join(failures))


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL server (superuser URL in `.url`), with pg_stat_statements preloaded; stopped at the end."""
    try:
        server = start_postgres()
    except (ServiceUnavailable, OSError) as exc:
        unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    return _free_port()
