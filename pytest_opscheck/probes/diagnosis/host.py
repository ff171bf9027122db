"""Resources: the disk under the engine's data, and each container's memory and CPU against its limit.

Container figures come from its cgroup files when the engine is on this host, else from the engine's stats API;
the evidence says which (`figures from`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..resource.stack import Container, Stack
from ..result import Evidence, Finding, table
from ..transport.cgroup import SOURCE_KEY
from .common import engine_lost as _engine_lost
from .common import size as _bytes
from .stack import _steps


def disk_free(stack: Stack, percent_limit: float) -> Finding | None:
    """Free space of the engine's data filesystem (DockerRootDir); None when the engine is not on this host.

    What fills it (`docker system df`) is asked only when the check fails: the engine walks every container's and
    image's layers to say (about 1 s for 50 containers on this machine's vfs driver)."""
    root = str(stack.engine_info.get("DockerRootDir") or "/var/lib/docker")
    if not stack.engine_is_local or not Path(root).exists():
        return None
    vfs = os.statvfs(root)
    total, free_bytes = vfs.f_blocks * vfs.f_frsize, vfs.f_bavail * vfs.f_frsize
    free = 100.0 * free_bytes / total if total else 0.0
    evidence = {
        "disk": f"{root}: {_bytes(free_bytes)} free of {_bytes(total)} ({free:.1f}% free), "
        f"{vfs.f_favail} inodes free",
    }
    if free < percent_limit:
        cause = f"only {free:.1f}% free on {root} (limit {percent_limit:g}%)"
    elif vfs.f_files and 100.0 * vfs.f_favail / vfs.f_files < percent_limit:
        cause = f"only {100.0 * vfs.f_favail / vfs.f_files:.1f}% inodes free on {root}"
    else:
        return Finding.passed(evidence)
    usage = _usage_split(stack)
    if usage:
        evidence["docker system df"] = usage
    return Finding.failed(cause, evidence)


def _usage_split(stack: Stack) -> str | None:
    """What the engine's disk holds, as `docker system df` splits it; None when the engine cannot say."""
    if stack.engine_lost():
        return None
    try:
        df = stack.engine_df()
        volumes = sum(((v.get("UsageData") or {}).get("Size") or 0) for v in df.get("Volumes") or [])
        return (
            f"images {_bytes(df.get('LayersSize') or 0)}, containers "
            f"{_bytes(sum(c.get('SizeRw') or 0 for c in df.get('Containers') or []))}, "
            f"volumes {_bytes(max(volumes, 0))}, build cache {_bytes(df.get('BuilderSize') or 0)}"
        )
    except Exception:  # noqa: BLE001 - the split is a help, the free space is the verdict
        return None


def _samples(stack: Stack) -> tuple[list[tuple[Container, dict[str, Any]]], list[str]]:
    """The stats sample of each running container, and `name: reason` for those that have none."""
    samples, missing = [], []
    for c in stack.containers:
        sample = stack.stats_or_reason(c)
        if isinstance(sample, str):
            missing.append(f"{c.name}: {sample}")
        elif sample is not None:
            samples.append((c, sample))
    return samples, missing


def _sources(samples: list[tuple[Container, dict[str, Any]]], missing: list[str]) -> Evidence:
    """Where the figures came from, with the containers each source gave."""
    by_source: dict[str, list[str]] = {}
    for c, sample in samples:
        by_source.setdefault(str(sample.get(SOURCE_KEY) or "the engine's stats API"), []).append(c.name)
    lines = [f"{source}: {', '.join(names)}" for source, names in by_source.items()]
    evidence: Evidence = {"figures from": "\n".join(lines)} if lines else {}
    if missing:
        evidence["not sampled"] = "\n".join(missing)
    return evidence


def memory_headroom(stack: Stack, percent_limit: float) -> Finding:
    """Each running container's memory usage against its limit."""
    rows, over = [], []
    samples, missing = _samples(stack)
    for c, sample in samples:
        mem = sample.get("memory_stats") or {}
        usage, limit = mem.get("usage"), mem.get("limit")
        if not usage or not limit:
            continue
        stats = mem.get("stats") or {}
        cache = stats.get("inactive_file", stats.get("total_inactive_file", 0))
        used = usage - cache if cache < usage else usage
        percent = 100.0 * used / limit
        rows.append([c.name, _bytes(used), _bytes(limit), f"{percent:.1f}%"])
        if percent >= percent_limit:
            over.append((c, f"{c.service} ({c.name}) at {percent:.0f}% of {_bytes(limit)}"))
    evidence: Evidence = {"memory": table(["container", "usage", "limit", "percent"], rows)} if rows else {}
    evidence |= _sources(samples, missing)
    if over:
        evidence |= _steps(stack, sorted({c.service for c, _ in over}), "restart {s}   # frees memory for now")
        evidence["then"] = "raise mem_limit in docker-compose.yml and look for the leak: docker stats --no-stream"
        return Finding.failed(f"memory over {percent_limit:g}%: {', '.join(t for _, t in over)}", evidence)
    if missing and not rows:
        return _engine_lost(stack) or Finding.failed(f"no memory figures from the engine: {missing[0]}", evidence)
    return Finding.passed(evidence)


def cpu(stack: Stack, percent_limit: float) -> Finding:
    """Each running container's CPU use over the stats sample, against the limit."""
    rows, over = [], []
    samples, missing = _samples(stack)
    for c, sample in samples:
        percent = cpu_percent(sample)
        if percent is None:
            continue
        rows.append([c.name, f"{percent:.1f}%"])
        if percent >= percent_limit:
            over.append((c, f"{c.service} ({c.name}) at {percent:.0f}%"))
    evidence: Evidence = {"cpu": table(["container", "cpu"], rows)} if rows else {}
    evidence |= _sources(samples, missing)
    if over:
        evidence |= _steps(stack, sorted({c.service for c, _ in over}), "logs {s} --tail=100")
        return Finding.failed(f"CPU over {percent_limit:g}%: {', '.join(t for _, t in over)}", evidence)
    if missing and not rows:
        return _engine_lost(stack) or Finding.failed(f"no CPU figures from the engine: {missing[0]}", evidence)
    return Finding.passed(evidence)


def cpu_percent(sample: dict[str, Any]) -> float | None:
    """`docker stats`' CPU % from one sample: container delta over system delta, times online CPUs."""
    now, before = sample.get("cpu_stats") or {}, sample.get("precpu_stats") or {}
    try:
        delta = now["cpu_usage"]["total_usage"] - before["cpu_usage"]["total_usage"]
        system = now["system_cpu_usage"] - before["system_cpu_usage"]
    except (KeyError, TypeError):
        return None
    cpus = now.get("online_cpus") or len(now["cpu_usage"].get("percpu_usage") or []) or 1
    return 100.0 * delta / system * cpus if system > 0 and delta >= 0 else 0.0
