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
    sweeps: Callable[[dict[str, str]], dict[str, Runs]], timeout: float,
) -> list[Point]:
    """A sweep of the stack alone (compose_project set, nothing else) for each size in `CONTAINERS`: every
    project up at once, their sweeps taken in turn."""
    projects = {count: f"benchscale{os.getpid()}x{count}" for count in CONTAINERS}
    try:
        for count, project in projects.items():
            up(project, stack_yaml(image, count))
        measured = sweeps({f"stack{count}": f'compose_project = "{project}"\ntimeout = {timeout}\n'
                           for count, project in projects.items()})
    finally:
        for project in projects.values():
            down(project)
    return [Point(f"stack of {count} containers", count, measured[f"stack{count}"]) for count in CONTAINERS]


def paths(http: int, sweeps: Callable[[dict[str, str]], dict[str, Runs]], timeout: float) -> list[Point]:
    """A sweep of the backend alone with each number of API paths in `PATHS`, taken in turn."""
    configs = {}
    for count in PATHS:
        listed = ", ".join(f'"/api/items/{i}"' for i in range(count))
        configs[f"paths{count}"] = (f'backend_url = "http://127.0.0.1:{http}"\nhealth_path = "/health"\n'
                                    f"api_paths = [{listed}]\ntimeout = {timeout}\n")
    measured = sweeps(configs)
    return [Point(f"backend with {count} API paths", count, measured[f"paths{count}"]) for count in PATHS]


def table(points: list[Point]) -> list[str]:
    """Markdown rows: each point's median wall time and peak RSS, with its ratio to the first."""
    first = points[0]
    rows = []
    for point in points:
        rows.append(f"| {'opscheck sweep, ' + point.label:58} | {point.runs.median:7.2f}s | {point.runs.cpu:5.2f}s | "
                    f"{point.runs.peak_mb:7.0f}MB | {point.runs.median / first.runs.median:10.2f}x |")
    return rows


def per_item_mb(points: list[Point]) -> float:
    """Peak RSS grown per item (container or path) from the smallest to the largest, in MB."""
    first, last = points[0], points[-1]
    return (last.runs.peak_mb - first.runs.peak_mb) / (last.size - first.size)

