"""The real services the other tests rely on are real and working, and a missing one is loud."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from realservices import (
    ComposeProject,
    Postgres,
    ServiceUnavailable,
    ensure_busybox_image,
    ensure_docker_engine,
    wait_for,
)

TESTS = Path(__file__).parent


def project_containers(client: Any, name: str) -> dict[str, Any]:
    """The project's containers by service name, found by the compose project label."""
    found = client.containers.list(all=True, filters={"label": f"com.docker.compose.project={name}"})
    return {c.labels["com.docker.compose.service"]: c for c in found}


def test_engine_answers_and_image_exists(docker_engine: Any, busybox_image: str) -> None:
    assert docker_engine.ping()
    assert docker_engine.images.get(busybox_image)
    assert ensure_busybox_image(docker_engine, busybox_image) == busybox_image  # idempotent
    out = docker_engine.containers.run(busybox_image, ["sh", "-c", "echo hello; nc --help 2>&1 | head -1"],
                                       network_mode="none", remove=True)
    assert out.startswith(b"hello\n")


def test_compose_stack_is_running_by_project_label(docker_engine: Any, compose_stack: Any) -> None:
    name = compose_stack(
        """
services:
  idle:
    image: ${BUSYBOX}
    network_mode: none
    command: sleep 3600
"""
    )
    containers = project_containers(docker_engine, name)
    assert set(containers) == {"idle"}
    assert containers["idle"].status == "running"


def test_crash_looping_service_shows_restarts(docker_engine: Any, compose_stack: Any) -> None:
    name = compose_stack(
        """
services:
  crasher:
    image: ${BUSYBOX}
    network_mode: none
    restart: always
    command: sh -c 'exit 3'
"""
    )
    # A crash loop is a state over time: between two runs the container is "running" with exit code 0, so
    # poll (with a deadline) for a moment that shows both the restarts and the last run's exit code.
    seen: list[tuple[int, str, int]] = []

    def looped() -> bool:
        crasher = project_containers(docker_engine, name)["crasher"]
        state = crasher.attrs["State"]
        seen.append((crasher.attrs["RestartCount"], state["Status"], state["ExitCode"]))
        return crasher.attrs["RestartCount"] >= 2 and state["ExitCode"] == 3

    try:
        wait_for(looped, 60, "a crash loop of exit code 3")
    except ServiceUnavailable:
        pytest.fail(f"no crash loop seen: (restarts, status, exit code) went {seen[:3]} ... {seen[-3:]}")


def test_compose_project_up_and_down_directly(docker_engine: Any, busybox_image: str, tmp_path: Path,
                                              compose_stack: Any) -> None:
    name = f"opscheck-direct-{time.monotonic_ns() % 10**8}"
    project = ComposeProject(name, tmp_path)
    try:
        project.up(f"services:\n  one:\n    image: {busybox_image}\n    network_mode: none\n    command: sleep 3600\n")
        assert project_containers(docker_engine, name)["one"].status == "running"
    finally:
        project.down()
    assert project_containers(docker_engine, name) == {}


def test_postgres_answers_with_pg_stat_statements(postgres: Postgres) -> None:
    import psycopg

    assert postgres.url.startswith(f"postgresql://postgres:{postgres.password}@127.0.0.1:{postgres.port}/postgres")
    with psycopg.connect(postgres.url, autocommit=True, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SHOW shared_preload_libraries").fetchone() == ("pg_stat_statements",)
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        assert conn.execute("SELECT count(*) >= 0 FROM pg_stat_statements").fetchone() == (True,)
    with pytest.raises(psycopg.OperationalError):  # the password is really required
        psycopg.connect(postgres.url.replace(postgres.password, "wrong"), connect_timeout=5).close()


def test_unreachable_docker_host_says_what_is_missing(monkeypatch: pytest.MonkeyPatch, free_port: int) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{free_port}")
    with pytest.raises(ServiceUnavailable, match=f"DOCKER_HOST=tcp://127.0.0.1:{free_port} .*no Docker engine"):
        ensure_docker_engine()


@pytest.mark.parametrize(("ci", "outcome", "text"), [("true", "errors", "REAL SERVICE MISSING IN CI"),
                                                      ("", "skipped", "REAL SERVICE MISSING (skipped")])
def test_missing_service_fails_in_ci_and_skips_elsewhere(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, free_port: int, ci: str, outcome: str, text: str
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{free_port}")
    monkeypatch.setenv("CI", ci)
    pytester.makeconftest((TESTS / "conftest.py").read_text())
    pytester.makepyfile("def test_needs_docker(docker_engine):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines([f"*{text}*DOCKER_HOST=tcp://127.0.0.1:{free_port}*"])


def test_engine_still_answers_after_an_inline_pytester_run(pytester: pytest.Pytester, docker_engine: Any) -> None:
    # pytester's in-process runs drop modules first imported inside them; the docker client must survive that.
    pytester.makepyfile("import docker, requests\n\ndef test_imports():\n    assert docker.from_env\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert docker_engine.ping()
    assert docker_engine.containers.list(limit=1) is not None


def test_stale_dockerd_pidfile_is_cleared(tmp_path: Path) -> None:
    """A pidfile left by a killed dockerd, its pid now another process's (ours here), does not block a start."""
    from realservices import _clear_stale_pidfile

    pidfile = tmp_path / "dockerd.pid"
    for content in (str(os.getpid()), "not a pid"):
        pidfile.write_text(content)
        _clear_stale_pidfile(pidfile)
        assert not pidfile.exists()
