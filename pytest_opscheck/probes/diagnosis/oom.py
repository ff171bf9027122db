"""OOM kills inside a container (for `stack.no_oom_kill`): the kernel's OOM killer may kill a process of the
container that is not its main one (a worker, a child the main process forked); the container keeps running and
the engine's `OOMKilled` stays false. The container's memory cgroup counts every such kill (`Container.oom_kills`,
read where the engine is local), and the kernel log says when, where this host lets it be read."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from ..resource.stack import Container, _ago
from ..result import Evidence
from ..transport.cgroup import KernelKill, kernel_oom_kills

LOG_KILLS = 5  # kills of one container shown from the kernel log, the latest


def killed_inside(containers: list[Container]) -> list[Container]:
    """The running containers whose memory cgroup counted an OOM kill while the engine says none (OOMKilled
    false): a process other than the main one was killed."""
    return [c for c in containers if (c.oom_kills or 0) > 0 and not c.state.get("OOMKilled")]


def killed_unflagged(container: Container) -> bool:
    """A container that ended killed (exit 137) while the engine's OOMKilled stayed false, and the kernel log of
    this host records an OOM kill in its memory cgroup: the engine can miss the kernel's event when the main
    process dies at once (seen with a 64 MiB read under an 8 MiB limit, about one run in three)."""
    if container.state.get("OOMKilled") or container.status == "running" or container.state.get("ExitCode") != 137:
        return False
    log = kernel_log(container)
    return isinstance(log, list) and bool(log)


def not_counted(containers: list[Container]) -> Evidence:
    """For a passing check: the running containers whose kills inside could not be counted here, and why."""
    names = [c.name for c in containers if c.status == "running" and c.oom_kills is None]
    if not names:
        return {}
    return {"kills inside containers": f"not counted for {', '.join(names)}: their memory cgroup is not readable "
                                       "here (run dmesg | grep -i oom on the engine's host)"}


def kernel_log(container: Container) -> list[KernelKill] | str:
    """The container's OOM kills in the kernel log, oldest first, or why the log cannot be read."""
    return kernel_oom_kills(str(container.attrs.get("Id") or ""))


def inside_cause(container: Container, log: list[KernelKill] | str) -> str:
    """`2 processes in backend (proj-backend-1) while it runs, the last (python) 3 min ago`."""
    count = container.oom_kills or 0
    what = "1 process" if count == 1 else f"{count} processes"
    last = f", the last ({log[-1].task}) {_ago(time.time() - log[-1].when)}" if isinstance(log, list) and log else ""
    return f"{what} in {container.service} ({container.name}) while it runs{last}"


def inside_evidence(container: Container, memory: str, log: list[KernelKill] | str) -> Evidence:
    """What the cgroup and the kernel log say of the kills inside `container` (`memory`: its limit and use)."""
    started = container.state.get("StartedAt") or "?"
    evidence: Evidence = {
        container.name: (
            f"{container.oom_kills} OOM kill(s) counted by its memory cgroup since it started ({started}); its main "
            f"process lives, so the container runs and the engine's OOMKilled is false; {memory}"
        ),
    }
    return evidence | log_evidence(container, log)


def kill_detail(container: Container, log: list[KernelKill] | str | None) -> str:
    """One line for the fact of a kill: the kernel's line of the latest and when (UTC), where it can be read;
    with when, what the sweep was doing at that moment can be named."""
    limit = container.attrs.get("HostConfig", {}).get("Memory") or 0
    under = f" under a memory limit of {limit / 1048576:.1f} MiB" if limit else ""
    if isinstance(log, list) and log:
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(log[-1].when))
        return f"{log[-1].line} at {at}{under}"
    finished = container.state.get("FinishedAt") or ""
    return f"{container.name} killed{under}" + (f", finished {finished}" if container.state.get("OOMKilled") else "")


def kill_time(container: Container, log: list[KernelKill] | str | None) -> str:
    """When the latest kill happened (ISO 8601, UTC): the kernel's log, else the engine's record of the killed
    container's end; "" where neither tells."""
    if isinstance(log, list) and log:
        return datetime.fromtimestamp(log[-1].when, UTC).isoformat(timespec="milliseconds")
    finished = str(container.state.get("FinishedAt") or "")
    if not container.state.get("OOMKilled") or finished.startswith("0001"):
        return ""
    found = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,6})?\d*(Z|[+-]\d\d:\d\d)$", finished)
    if found is None:
        return ""
    stamp = datetime.fromisoformat(f"{found[1]}{found[2] or ''}{'+00:00' if found[3] == 'Z' else found[3]}")
    return stamp.astimezone(UTC).isoformat(timespec="milliseconds")


def log_evidence(container: Container, log: list[KernelKill] | str) -> Evidence:
    """The kernel's lines for the container's latest OOM kills, each with when; or why there are none."""
    if isinstance(log, str):
        shown = f"{log}: when is not known here"
    elif not log:
        shown = "no OOM kill of it left in the kernel log (its ring buffer has moved on): run dmesg | grep -i oom"
    else:
        now = time.time()
        shown = "\n".join(
            f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(kill.when))} ({_ago(now - kill.when)}): {kill.line}"
            for kill in log[-LOG_KILLS:]
        )
    return {f"{container.name}: kernel log": shown}
