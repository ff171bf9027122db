"""Resources of the host the stack runs on."""

from __future__ import annotations

import pytest

from pytest_opscheck.config import Settings
from pytest_opscheck.probes import compose
from pytest_opscheck.probes.compose import Stack
from pytest_opscheck.verdict import expect


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """The disk holding Docker's data is nearly full: databases and logs stop writing when it is.
  df -h
  docker system df
Free space with care (images no container uses: docker image prune; old logs), and grow the disk."""
)
def test_disk_free(stack: Stack, opscheck_config: Settings) -> None:
    finding = compose.disk_free(stack, opscheck_config.thresholds.disk_free_percent)
    if finding is None:
        pytest.skip(f"cannot measure: the Docker engine ({compose.engine_address()}) is not on this machine; "
                    "run df -h there")
    expect(finding)
