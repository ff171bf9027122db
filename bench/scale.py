"""The sweep's cost as the stack grows: a Compose project of 5, 20 and 50 busybox containers (no network), and a
backend with 10 and 100 API paths; each swept alone, its wall time and peak RSS beside the smallest's."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from measure import Runs

CONTAINERS = (5, 20, 50)
PATHS = (10, 100)


@dataclass(frozen=True)
class Point:
    label: str
    size: int
    runs: Runs


def stack_yaml(image: str, count: int) -> str:
    """`count` services of one busybox container each, sleeping, without a network."""
    services = "".join(
        f"  svc{i:02d}:\n    image: {image}\n    network_mode: none\n    command: [\"sleep\", \"3600\"]\n"
        for i in range(count)
    )
    return f"services:\n{services}"


def containers(
    up: Callable[[str, str], None], down: Callable[[str], None], image: str,
    sweep: Callable[[str, str], Runs], timeout: float,
) -> list[Point]:
    """A sweep of the stack alone (compose_project set, nothing else) for each size in `CONTAINERS`."""
    points = []
    for count in CONTAINERS:
        project = f"benchscale{os.getpid()}x{count}"
        up(project, stack_yaml(image, count))
        try:
            config = f'compose_project = "{project}"\ntimeout = {timeout}\n'
            points.append(Point(f"stack of {count} containers", count, sweep(f"stack{count}", config)))
        finally:
            down(project)
    return points


def paths(http: int, sweep: Callable[[str, str], Runs], timeout: float) -> list[Point]:
    """A sweep of the backend alone with each number of API paths in `PATHS`."""
    points = []
    for count in PATHS:
        listed = ", ".join(f'"/api/items/{i}"' for i in range(count))
        config = (f'backend_url = "http://127.0.0.1:{http}"\nhealth_path = "/health"\napi_paths = [{listed}]\n'
                  f"timeout = {timeout}\n")
        points.append(Point(f"backend with {count} API paths", count, sweep(f"paths{count}", config)))
    return points


def table(points: list[Point]) -> list[str]:
    """Markdown rows: each point's median wall time and peak RSS, with its ratio to the first."""
    first = points[0]
    rows = []
    for point in points:
        rows.append(f"| {'opscheck sweep, ' + point.label:58} | {point.runs.median:7.2f}s | "
                    f"{point.runs.peak_mb:7.0f}MB | {point.runs.median / first.runs.median:10.2f}x |")
    return rows


def per_item_mb(points: list[Point]) -> float:
    """Peak RSS grown per item (container or path) from the smallest to the largest, in MB."""
    first, last = points[0], points[-1]
    return (last.runs.peak_mb - first.runs.peak_mb) / (last.size - first.size)

