"""Resources of the host the stack runs on."""

from __future__ import annotations

import pytest

from pytest_opscheck.config import Settings
from pytest_opscheck.probes.diagnosis import host
from pytest_opscheck.probes.resource.stack import Stack
from pytest_opscheck.probes.transport.engine import engine_address
from pytest_opscheck.verdict import expect


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """The disk holding Docker's data is nearly full: databases and logs stop writing when it is.
  df -h
  docker system df
Free space with care (images no container uses: docker image prune; old logs), and grow the disk."""
)
@pytest.mark.topics("resources", "outage")
def test_disk_free(stack: Stack, opscheck_config: Settings) -> None:
    finding = host.disk_free(stack, opscheck_config.thresholds.disk_free_percent)
    if finding is None:
        pytest.skip(f"cannot measure: the Docker engine ({engine_address()}) is not on this machine; "
                    "run df -h there")
    expect(finding)
