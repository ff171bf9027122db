"""Resources of the host the stack runs on."""

from __future__ import annotations

import pytest

from pytest_opscheck.config import Settings
from pytest_opscheck.probes.diagnosis import host, host_memory
from pytest_opscheck.probes.resource.stack import Stack
from pytest_opscheck.probes.transport.engine import engine_address
from pytest_opscheck.verdict import expect

# Checks about the whole stack (or its host): a failure carries every container's deploy; a wait gives up on
# any crash-looping service.
pytestmark = pytest.mark.stack_wide


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """The disk holding Docker's data is nearly full: databases and logs stop writing when it is.
  df -h
  docker system df
Free space with care (images no container uses: docker image prune; old logs), and grow the disk."""
)
@pytest.mark.topics("resources", "outage")
@pytest.mark.automates("df -h*", "check resources")
def test_disk_free(stack: Stack, opscheck_config: Settings) -> None:
    finding = host.disk_free(stack, opscheck_config.thresholds.disk_free_percent)
    if finding is None:
        pytest.skip(f"cannot measure: the Docker engine ({engine_address()}) is not on this machine; "
                    "run df -h there")
    expect(finding)


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """The host the engine runs on is short of memory: the kernel's OOM killer picks a process next (often the
database or the backend), and what swaps gets slow.
  free -m
  docker stats --no-stream            # which container holds the memory
  dmesg | grep -i oom                 # what was killed already
Get memory back: restart the container that leaks ({compose} restart <service>), stop what does not
belong on this host; then give each service a mem_limit in {compose_file} so that one cannot take the
host, and add memory (or swap) to the host."""
)
@pytest.mark.topics("resources", "outage", "slow")
@pytest.mark.automates("free -m*", "free -h*", "check resources")
def test_memory_free(stack: Stack, opscheck_config: Settings) -> None:
    finding = host_memory.memory_free(stack, opscheck_config.thresholds.host_memory_free_percent)
    if finding is None:
        pytest.skip(f"cannot measure: the Docker engine ({engine_address()}) is not on this machine"
                    f"{host_memory.remote_total(stack)}; run free -m there")
    expect(finding)
