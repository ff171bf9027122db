"""The hooks pytest-opscheck publishes (as pytest-xdist's `newhooks.py`): a team's plugin or the `conftest.py`
of its checks folder implements them, and so do the product's own targets and reporters.

Registered with `pytest_addhooks` in `plugin.py`; importing this module imports nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .model import Summary
    from .targets import Targets


@pytest.hookspec(historic=True)
def pytest_opscheck_targets(targets: Targets) -> None:
    """Declare targets beside the built-in ones:
    ``targets.add("cache", opener=open_cache, setting="extra.cache_url", root_check="cache.reachable")``.

    `open_cache(value, timeout)` returns a handle (closed with its ``close()`` at the end, if it has one) or
    raises ``pytest_opscheck.TargetUnreachable("cache", cause)``. The target is opened with the others at the
    start, its checks are skipped as "not configured: extra.cache_url" when the key is absent and fail with
    "cache: <cause>", attributed to `root_check`, when it cannot be reached. A conftest loaded later (a checks
    folder's) is called as soon as pytest registers it.
    """


def pytest_opscheck_summary(summary: Summary, config: pytest.Config) -> None:
    """Called once at the end of a sweep with its final, redacted summary (records with their root causes,
    the verdict, what to fix first, what changed since the last green sweep): for a team's own reporter (chat,
    pager). The built-in JSON, Prometheus and post-mortem writers are implementations of this hook."""
