"""Application not starting / service outage / network / logs / resources: the container diagnoses.

Every failure's evidence ends with the commands for the failing services, ready to paste.
"""

from __future__ import annotations

import pytest

from pytest_opscheck.config import Settings
from pytest_opscheck.config.keys import skipped_for
from pytest_opscheck.probes.diagnosis import config_current, host, network, swarm
from pytest_opscheck.probes.diagnosis import stack as diagnose
from pytest_opscheck.probes.resource.compose import ComposeStack
from pytest_opscheck.probes.resource.stack import Stack
from pytest_opscheck.verdict import expect, skip_unless_configured

# Checks about the whole stack (or its host): a failure carries every container's deploy; a wait gives up on
# any crash-looping service.
pytestmark = pytest.mark.stack_wide


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """A service has no running container. See the state and why it stopped:
  {compose} ps
  {compose} logs <service> --tail=100
Fix what the logs say (often a variable in {env_file}, the database, or a port), then start it:
  {compose} up -d <service>
If it needs the database, check that first: {compose} ps {db} ; grep -e POSTGRES -e DATABASE_URL {env_file}"""
)
@pytest.mark.topics("outage")
@pytest.mark.automates("docker compose ps", "docker compose ps *", "*check container status*", "*check all services*")
def test_services_running(stack: Stack) -> None:
    expect(diagnose.services_running(stack))


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """A container keeps crashing (restarting, exited with an error, or restarted during the sweep). The
evidence holds its last log lines; the first error there is usually the cause (a bad variable, the
database out of reach, a missing secret):
  {compose} logs <service> --tail=100
  dmesg | grep -i oom            # killed for memory? see stack.no_oom_kill
Fix the cause, then: {compose} up -d <service>
If it started with a deploy, roll back to the previous image tag."""
)
@pytest.mark.topics("outage")
@pytest.mark.automates("docker compose logs *")
def test_no_crash_loop(stack: Stack) -> None:
    expect(diagnose.no_crash_loop(stack))


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """The kernel killed a container for going over its memory limit.
  dmesg | grep -i oom
  docker stats --no-stream
Raise the service's limit (mem_limit, or deploy.resources.limits.memory, in {compose_file}), then
  {compose} up -d <service>
and look for what needed that much memory (a leak, a huge request, a query loading everything)."""
)
@pytest.mark.topics("outage", "resources")
@pytest.mark.automates("dmesg*oom*", "*check for oom*")
def test_no_oom_kill(stack: Stack) -> None:
    expect(diagnose.no_oom_kill(stack))


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """A container's healthcheck fails. Its last outputs are in the evidence; for more:
  docker inspect --format '{{json .State.Health}}' <container>
  {compose} logs <service> --tail=100
Fix what it reports (often the database or a dependency), then: {compose} up -d <service>"""
)
@pytest.mark.topics("outage", "health")
@pytest.mark.automates("docker inspect *health*")
def test_healthchecks(stack: Stack) -> None:
    expect(diagnose.healthchecks(stack))


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """A required variable is missing, empty, a placeholder (changethis, changeme, secret) or too short.
See which names the container has (names only, never values):
  {compose} exec <service> env | cut -d= -f1
  grep -e POSTGRES -e DATABASE_URL {env_file}
Put a real value in {env_file} (secrets: at least 32 random characters: openssl rand -hex 32), then
  {compose} up -d <service>
Changing SECRET_KEY/JWT_SECRET logs every user out: tokens already issued stop being valid."""
)
@pytest.mark.topics("outage")
@pytest.mark.automates("docker compose exec * env*", "*check environment variables*", "grep * .env", "cat .env")
def test_required_env(stack: Stack, opscheck_config: Settings) -> None:
    skip_unless_configured(skipped_for(opscheck_config, "required_env"))
    expect(diagnose.required_env(stack, opscheck_config.required_env))


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """A port of the stack is not listening, or another process holds it (port conflict).
Who holds it:  ss -ltnp | grep :<port>
Stop that process, or change the port in {compose_file}, then
  {compose} up -d <service>
Not listening at all: {compose} logs <service> --tail=100"""
)
@pytest.mark.topics("outage", "network")
@pytest.mark.automates("ss -l*", "*port conflict*")
def test_ports_bound(stack: Stack, opscheck_config: Settings) -> None:
    expect(network.ports_bound(stack, opscheck_config.timeout))


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """The backend container cannot reach the database at the address it is configured with (its
DATABASE_URL, or POSTGRES_SERVER/POSTGRES_HOST/DB_HOST and the port; or stack_db_address):
  {compose} ps {db}
  {compose} exec {backend} ping -c 1 <host>
  docker network ls
Name does not resolve: both services must share a network in {compose_file} (and the name must be the
service's); a host-networked backend (network_mode: host) reaches the database at 127.0.0.1 and its
published port. Does not connect: the database is down or listens elsewhere: {compose} restart {db} ;
grep -e POSTGRES -e DATABASE_URL {env_file}"""
)
@pytest.mark.topics("network", "database", "outage")
@pytest.mark.depends_on("db")
@pytest.mark.service("backend")
@pytest.mark.automates(
    "docker compose exec * ping *", "docker network ls", "*check database connectivity*", "check network",
)
def test_backend_reaches_db(stack: Stack, opscheck_config: Settings) -> None:
    s = opscheck_config
    # The address the backend itself is configured with; when nothing tells it, a skip saying what to set.
    found = network.backend_db_address(stack, s)
    if isinstance(found, str):
        skip_unless_configured(found)
        return
    address, source = found
    expect(network.backend_reaches_db(stack, s.backend_service, address, s.timeout, source))


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """Errors in the recent logs (tracebacks, FATAL, panic, connection errors, OOM). Read around them:
  {compose} logs <service> --tail=100
The first error is usually the cause: 'could not connect' points at the database ({compose} ps {db}),
OOM at memory (dmesg | grep -i oom), a traceback at a bug or a bad deploy (roll back if it began with one)."""
)
@pytest.mark.topics("logs", "outage", "api-500")
@pytest.mark.automates("docker compose logs*", "*check logs", "*identify error in logs*", "*check backend logs*")
def test_logs_clean(stack: Stack, opscheck_config: Settings) -> None:
    expect(diagnose.logs_clean(stack, opscheck_config.log_patterns))


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """A container uses most of its memory limit: the OOM killer is next.
  docker stats --no-stream
Restart it to get memory back for now ({compose} restart <service>), raise mem_limit in
{compose_file}, and look for the leak (the health JSON's memory figures, heap dumps)."""
)
@pytest.mark.topics("resources", "outage", "slow")
@pytest.mark.automates("docker stats*", "check resources", "*check memory usage*")
def test_memory_headroom(stack: Stack, opscheck_config: Settings) -> None:
    expect(host.memory_headroom(stack, opscheck_config.thresholds.memory_percent))


@pytest.mark.severity("P3")
@pytest.mark.resolution(
    """A container is using a lot of CPU.
  docker stats --no-stream
  {compose} logs <service> --tail=100
Look for a hot loop or a slow query (db.slow_queries); scale or restart the service if users feel it."""
)
@pytest.mark.topics("resources", "slow")
@pytest.mark.automates("docker stats*", "check resources")
def test_cpu(stack: Stack, opscheck_config: Settings) -> None:
    expect(host.cpu(stack, opscheck_config.thresholds.cpu_percent))


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """A container still runs with the configuration it was created with, from before .env or the compose
file changed: a fix there ("I fixed SECRET_KEY and it still fails") has not reached it. A restart keeps the
old configuration; recreate the service:
  {compose} up -d <service>
See what changed first (values of secrets are never printed by this check):
  {compose} config <service>
  git diff -- {compose_file} {env_file}     (or the copy you deployed from)
Compose also takes variables from the shell that ran `up`: run it from the same shell, with the same
exports, or put those variables in {env_file}."""
)
@pytest.mark.topics("outage")
@pytest.mark.automates("cat .env", "*verify .env*", "docker compose config*")
def test_config_current(stack: Stack, opscheck_config: Settings) -> None:
    if not isinstance(stack, ComposeStack):
        pytest.skip(f"a {stack.kind} has no Compose config hash to compare")
    finding = config_current.config_current(stack, stack.config_today(), opscheck_config.timeout)
    if isinstance(finding, str):
        pytest.skip(finding)
    expect(finding)


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """A node of the swarm is down or unreachable: the managers stopped hearing its heartbeat. Its tasks are
not counted as running; the swarm places what it can on the other nodes.
  docker node ls
  docker node ps <node>
  docker node inspect --format '{{json .Status}}' <node>
On that node: is dockerd running (systemctl status docker), does it reach a manager on TCP 2377 (and the
other nodes on TCP/UDP 7946, UDP 4789)? Bring it back; or take it out of the swarm:
  docker node update --availability drain <node>   # then, if it is gone for good: docker node rm <node>
Then see where its tasks went: docker stack ps --no-trunc <stack>"""
)
@pytest.mark.topics("outage", "network")
@pytest.mark.automates("docker node ls*", "docker node ps *", "docker node inspect *")
def test_nodes_ready(opscheck_config: Settings, request: pytest.FixtureRequest) -> None:
    _swarm_only(opscheck_config)
    expect(swarm.nodes_ready(request.getfixturevalue("stack")))


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """A task of the stack cannot be placed or started; the swarm's own reason is in the message.
  docker service ps --no-trunc <stack>_<service>
  docker node ls
- "no suitable node (insufficient resources on N nodes)": lower deploy.resources.reservations in the stack
  file, or add capacity
- "(scheduling constraints not satisfied on N nodes)": fix deploy.placement.constraints, or label a node:
  docker node update --label-add KEY=VALUE <node>
- "(max replicas per node limit exceed)": more ready nodes, or raise deploy.placement.max_replicas_per_node
- "No such image": push the image to a registry every node pulls from (deploy with
  docker stack deploy --with-registry-auth), or load it on each node
Then deploy again: docker stack deploy -c docker-compose.yml <stack>"""
)
@pytest.mark.topics("outage", "resources")
@pytest.mark.automates("docker service ps *", "docker stack ps *")
def test_tasks_scheduled(opscheck_config: Settings, request: pytest.FixtureRequest) -> None:
    _swarm_only(opscheck_config)
    expect(swarm.tasks_scheduled(request.getfixturevalue("stack")))


def _swarm_only(settings: Settings) -> None:
    """A check of Swarm's own (nodes, the scheduler): on a Compose project it does not apply, which is no gap in
    the sweep's coverage; elsewhere its key is missing like any other's."""
    __tracebackhide__ = True
    if settings.compose_project or settings.compose_file:
        skip_unless_configured("applies to a Swarm stack only (this stack is a Compose project)")
    skip_unless_configured(skipped_for(settings, "swarm_stack"))
