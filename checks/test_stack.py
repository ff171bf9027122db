"""Application not starting / service outage / network / logs / resources: the container diagnoses."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from pytest_opscheck.config import Settings
from pytest_opscheck.probes import compose
from pytest_opscheck.probes.compose import Stack
from pytest_opscheck.verdict import expect, skip_unless_configured


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """A service has no running container. See the state and why it stopped:
  docker compose ps
  docker compose logs <service> --tail=100
Start it again (after fixing what the logs say):
  docker compose up -d <service>
If it depends on the database or a secret, check those first: grep POSTGRES .env"""
)
def test_services_running(stack: Stack) -> None:
    expect(compose.services_running(stack))


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """A container keeps crashing (restarting, or exited with an error). The evidence holds its last log
lines; the first error there is usually the cause (bad environment, database not reachable, missing secret).
  docker compose logs <service> --tail=100
  dmesg | grep -i oom            # a crash loop under memory pressure
Fix the cause, then: docker compose up -d <service>
After a bad deploy, roll back to the previous image tag."""
)
def test_no_crash_loop(stack: Stack) -> None:
    expect(compose.no_crash_loop(stack))


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """The kernel killed a container for exceeding its memory limit.
  dmesg | grep -i oom
  docker stats --no-stream
Raise the service's memory limit (mem_limit / deploy.resources.limits.memory in docker-compose.yml), then
  docker compose up -d <service>
and look for the leak or the request that needs that much memory."""
)
def test_no_oom_kill(stack: Stack) -> None:
    expect(compose.no_oom_kill(stack))


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """A container's healthcheck fails. Its last outputs are in the evidence; run it by hand to see more:
  docker inspect --format '{{json .State.Health}}' <container>
  docker compose logs <service> --tail=100
Fix what it reports (often the database or a dependency), then docker compose up -d <service>."""
)
def test_healthchecks(stack: Stack) -> None:
    expect(compose.healthchecks(stack))


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """A required variable is missing, empty, a placeholder (changethis, changeme, secret) or too short.
Set a real value in .env (secrets: at least 32 random characters, e.g. openssl rand -hex 32), then
  docker compose up -d <service>
Check what the container sees, names only: docker compose exec <service> env | cut -d= -f1
Changing SECRET_KEY/JWT_SECRET logs every user out: existing tokens stop being valid."""
)
def test_required_env(stack: Stack, opscheck_config: Settings) -> None:
    skip_unless_configured(opscheck_config.missing("required_env"))
    expect(compose.required_env(stack, opscheck_config.required_env))


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """A port the stack publishes is not listening, or another process holds it (port conflict).
Find who holds it:  ss -ltnp | grep :<port>
Stop that process or change the published port in docker-compose.yml, then
  docker compose up -d <service>"""
)
def test_ports_bound(stack: Stack, opscheck_config: Settings) -> None:
    expect(compose.ports_bound(stack, opscheck_config.timeout))


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """The backend container cannot reach the database over the stack's network.
  docker compose ps db
  docker compose exec backend ping db
  docker network ls
If the name does not resolve, both services must share a network in docker-compose.yml; if it does not
connect, the database is down or listening elsewhere: docker compose restart db"""
)
def test_backend_reaches_db(stack: Stack, opscheck_config: Settings) -> None:
    address = opscheck_config.stack_db_address
    if address is None:
        skip_unless_configured(opscheck_config.missing("database_url"))
        assert opscheck_config.database_url is not None
        port = urlsplit(opscheck_config.database_url).port or 5432
        address = f"{opscheck_config.db_service}:{port}"
    expect(compose.backend_reaches_db(stack, opscheck_config.backend_service, address, opscheck_config.timeout))


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """Errors in the recent logs (tracebacks, FATAL, panic, connection errors, OOM). Read around them:
  docker compose logs <service> --tail=100
The first error is usually the cause; 'could not connect' points at the database (docker compose ps db),
a traceback at a bug or a bad deploy (roll back if it started with the deploy)."""
)
def test_logs_clean(stack: Stack, opscheck_config: Settings) -> None:
    expect(compose.logs_clean(stack, opscheck_config.log_patterns))


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """A container uses most of its memory limit; it will be OOM-killed next.
  docker stats --no-stream
Restart it to get memory back for now (docker compose restart <service>), raise its limit, and look for
the leak (health JSON memory figures, heap dumps)."""
)
def test_memory_headroom(stack: Stack, opscheck_config: Settings) -> None:
    expect(compose.memory_headroom(stack, opscheck_config.thresholds.memory_percent))


@pytest.mark.severity("P3")
@pytest.mark.resolution(
    """A container is using a lot of CPU.
  docker stats --no-stream
  docker compose logs <service> --tail=100
Look for a hot loop or a slow query (db.slow_queries); scale or restart the service if users are affected."""
)
def test_cpu(stack: Stack, opscheck_config: Settings) -> None:
    expect(compose.cpu(stack, opscheck_config.thresholds.cpu_percent))
