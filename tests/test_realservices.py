"""The real services the other tests rely on are real and working."""

from __future__ import annotations

import time
from typing import Any

from realservices import Postgres


def test_engine_answers_and_image_exists(docker_engine: Any, busybox_image: str) -> None:
    assert docker_engine.ping()
    assert docker_engine.images.get(busybox_image)


def test_compose_stack_runs_and_crash_loops(docker_engine: Any, compose_stack: Any) -> None:
    name = compose_stack(
        """
services:
  idle:
    image: ${BUSYBOX}
    network_mode: none
    command: sleep 3600
  crasher:
    image: ${BUSYBOX}
    network_mode: none
    restart: always
    command: sh -c 'exit 3'
"""
    )
    label = f"com.docker.compose.project={name}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        containers = {c.labels["com.docker.compose.service"]: c for c in docker_engine.containers.list(
            all=True, filters={"label": label})}
        if containers["crasher"].attrs["RestartCount"] >= 1:
            break
        time.sleep(0.5)
    assert containers["idle"].status == "running"
    assert containers["crasher"].attrs["RestartCount"] >= 1


def test_postgres_answers_with_pg_stat_statements(postgres: Postgres) -> None:
    import psycopg

    with psycopg.connect(postgres.url, autocommit=True, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        assert conn.execute("SELECT count(*) >= 0 FROM pg_stat_statements").fetchone() == (True,)
