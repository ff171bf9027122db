"""Container CPU and memory from the container's own cgroup files, when its engine runs on this host.

The engine's stats API answers a container's CPU use only from two readings of its one-second tick (a second or
two per sample); the same counters are files under /sys/fs/cgroup. A container's cgroup is found from its main
process (`/proc/PID/cgroup`, kept only when the path names the container's id) or else by the engine's cgroup
driver's naming (cgroupfs: `/docker/ID`, systemd: `system.slice/docker-ID.scope`), in cgroup v1 (the cpuacct and
memory hierarchies) or v2 (one unified hierarchy), wherever `/proc/self/mountinfo` says they are mounted.

CPU is two readings of the usage counter `CPU_INTERVAL` apart; memory use, limit and the OOM-kill counter are read
directly. A sample has the engine's stats API shape (`cpu_stats`, `precpu_stats`, `memory_stats`) so that checks read
both sources alike, and `SOURCE_KEY` says where its figures came from. It only reads.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CPU_INTERVAL = 0.2
SOURCE_KEY = "opscheck_source"
KMSG = "/dev/kmsg"
# The kernel's line naming the cgroup and the task of an OOM kill (4.19 and later), and the older kernels' form.
_OOM_LINE = re.compile(r"oom-kill:.*,task=(?P<task>[^,]*),pid=(?P<pid>\d+)")
_OLD_OOM_LINE = re.compile(r"Task in (?P<memcg>\S+) killed as a result of limit")
_KILLED = re.compile(r"Killed process (?P<pid>\d+) \((?P<task>[^)]*)\)")


@dataclass(frozen=True)
class Mount:
    """One cgroup hierarchy as mounted here: its root inside the hierarchy and where it is mounted."""

    root: str
    point: Path

    def directory(self, path: str) -> Path | None:
        """Where the cgroup `path` (as /proc/PID/cgroup writes it) is under this mount; None when outside it."""
        root = self.root.rstrip("/")
        if root and not (path == root or path.startswith(root + "/")):
            return None
        return self.point / path[len(root):].lstrip("/")


@dataclass(frozen=True)
class Mounts:
    """The cgroup hierarchies holding CPU accounting and memory: v1 mounts by controller, else the v2 mount."""

    v1: dict[str, Mount]
    v2: Mount | None

    def hierarchy(self, controller: str) -> tuple[int, Mount] | None:
        if controller in self.v1:
            return 1, self.v1[controller]
        return (2, self.v2) if self.v2 is not None else None


def mounts(mountinfo: str = "/proc/self/mountinfo") -> Mounts:
    """The cgroup mounts of this process's mount namespace."""
    v1: dict[str, Mount] = {}
    v2: Mount | None = None
    with open(mountinfo, encoding="utf-8") as lines:
        for line in lines:
            head, _, tail = line.partition(" - ")
            fields, after = head.split(), tail.split()
            if len(fields) < 5 or len(after) < 3:
                continue
            mount = Mount(_unescape(fields[3]), Path(_unescape(fields[4])))
            if after[0] == "cgroup2" and (v2 is None or str(mount.point) == "/sys/fs/cgroup"):
                v2 = mount
            elif after[0] == "cgroup":
                for option in after[2].split(","):
                    if option in ("cpuacct", "memory"):
                        v1.setdefault(option, mount)
    return Mounts(v1, v2)


def _unescape(text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


@dataclass(frozen=True)
class Cgroup:
    """Where one container's CPU and memory counters are."""

    cpu: Path
    cpu_version: int
    memory: Path
    memory_version: int

    def describe(self) -> str:
        """`cgroup v1 files under /sys/fs/cgroup/memory/docker` (the memory cgroup's parent: the engine's)."""
        versions = sorted({self.cpu_version, self.memory_version})
        return f"cgroup v{'+v'.join(map(str, versions))} files under {self.memory.parent}"


def driver_paths(container_id: str, driver: str, parent: str) -> list[str]:
    """The cgroup paths the engine's cgroup driver gives a container (`parent`: its CgroupParent, if set)."""
    if driver == "systemd":
        slice_name = parent or "system.slice"
        parts = slice_name.removesuffix(".slice").split("-")
        slices = ["-".join(parts[: i + 1]) + ".slice" for i in range(len(parts))] if slice_name != "-.slice" else []
        return ["/" + "/".join([*slices, f"docker-{container_id}.scope"])]
    return [f"/{(parent or '/docker').strip('/')}/{container_id}"]


def process_paths(pid: int, proc: str = "/proc") -> dict[str, str]:
    """The cgroup path of process `pid` per hierarchy: v1 controller names, and "" for v2; empty if unreadable."""
    try:
        text = Path(proc, str(pid), "cgroup").read_text(encoding="utf-8")
    except OSError:
        return {}
    found: dict[str, str] = {}
    for line in text.splitlines():
        _, controllers, path = [*line.split(":", 2), "", ""][:3]
        for name in controllers.split(",") if controllers else [""]:
            found[name] = path
    return found


def locate(
    container_id: str, pid: int, driver: str, parent: str, where: Mounts
) -> Cgroup | str:
    """The container's cgroup files, or why they cannot be read here (a one-line reason).

    Its main process's own cgroup comes first, kept only when it names the container's id (a pid of another
    namespace may be another process here); else the driver's naming. The files must be readable.
    """
    own = process_paths(pid) if pid > 0 else {}
    found: dict[str, tuple[int, Path]] = {}
    for controller, counter in (("cpuacct", ("cpuacct.usage", "cpu.stat")), ("memory", ("memory.usage_in_bytes",
                                                                                      "memory.current"))):
        hierarchy = where.hierarchy(controller)
        if hierarchy is None:
            return f"no cgroup hierarchy with the {controller} controller is mounted here"
        version, mount = hierarchy
        key = controller if version == 1 else ""
        paths = [p for p in (own.get(key),) if p and container_id in p] + driver_paths(container_id, driver, parent)
        for path in paths:
            directory = mount.directory(path)
            if directory is not None and os.access(directory / counter[version - 1], os.R_OK):
                found[controller] = (version, directory)
                break
        else:
            return f"its cgroup is not readable here (looked for {container_id[:12]} under {mount.point})"
    return Cgroup(found["cpuacct"][1], found["cpuacct"][0], found["memory"][1], found["memory"][0])


@dataclass(frozen=True)
class Reading:
    """One reading of a container's counters."""

    at: float  # time.monotonic()
    wall: float  # time.time()
    cpu_ns: int
    memory: dict[str, Any]  # the stats API's memory_stats shape
    oom_kills: int | None


def _keyed(path: Path) -> dict[str, int]:
    """A cgroup `key value` file (memory.stat, cpu.stat, memory.events) as a dict of integers."""
    pairs = (line.split() for line in path.read_text(encoding="utf-8").splitlines())
    return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].lstrip("-").isdigit()}


def _number(path: Path) -> int | None:
    """The integer in a one-value file; None for "max" or an absent file."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def host_memory() -> int:
    """This host's memory in bytes: the engine's stats API caps a container's limit to it."""
    for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def read(cgroup: Cgroup, host_bytes: int) -> Reading:
    """The container's counters now; OSError when its cgroup is gone (it stopped)."""
    if cgroup.cpu_version == 1:
        cpu_ns = int((cgroup.cpu / "cpuacct.usage").read_text(encoding="utf-8"))
    else:
        cpu_ns = _keyed(cgroup.cpu / "cpu.stat")["usage_usec"] * 1000
    at, wall = time.monotonic(), time.time()
    folder = cgroup.memory
    memory: dict[str, Any]
    if cgroup.memory_version == 1:
        memory = {
            "usage": _number(folder / "memory.usage_in_bytes") or 0,
            "max_usage": _number(folder / "memory.max_usage_in_bytes"),
            "failcnt": _number(folder / "memory.failcnt"),
            "limit": _limit(_number(folder / "memory.limit_in_bytes"), host_bytes),
            "stats": _keyed(folder / "memory.stat"),
        }
        oom_kills = _keyed(folder / "memory.oom_control").get("oom_kill")
    else:
        memory = {
            "usage": _number(folder / "memory.current") or 0,
            "limit": _limit(_number(folder / "memory.max"), host_bytes),
            "stats": _keyed(folder / "memory.stat"),
        }
        peak = _number(folder / "memory.peak")
        if peak is not None:
            memory["max_usage"] = peak
        oom_kills = _keyed(folder / "memory.events").get("oom_kill")
    return Reading(at, wall, cpu_ns, {k: v for k, v in memory.items() if v is not None}, oom_kills)


def _limit(limit: int | None, host_bytes: int) -> int | None:
    """The memory limit as the engine's stats API gives it: the host's memory when the cgroup's is above it."""
    if limit is None or (host_bytes and limit > host_bytes):
        return host_bytes or None
    return limit


def sample_of(cgroup: Cgroup, first: Reading, second: Reading) -> dict[str, Any]:
    """Two readings as one stats API sample. The host's CPU time over the span (`system_cpu_usage`) is taken
    as wall time times online CPUs, so that the usual formula gives the CPU-seconds the container used per second
    (100% is one CPU), as `docker stats` shows."""
    cpus = os.cpu_count() or 1

    def cpu(reading: Reading) -> dict[str, Any]:
        return {"cpu_usage": {"total_usage": reading.cpu_ns}, "system_cpu_usage": int(reading.at * 1e9) * cpus,
                "online_cpus": cpus}

    return {
        "read": _iso(second.wall),
        "preread": _iso(first.wall),
        "cpu_stats": cpu(second),
        "precpu_stats": cpu(first),
        "memory_stats": second.memory,
        SOURCE_KEY: f"{cgroup.describe()} (CPU from two readings {CPU_INTERVAL:g} s apart)",
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


class CgroupSampler:
    """The first reading of each container now, the second `CPU_INTERVAL` later in a thread of its own. A
    container whose first reading fails is left out, its reason in `failed`."""

    def __init__(self, cgroups: dict[str, Cgroup]) -> None:
        self.host_bytes = host_memory()
        readings = {cid: self._read(cg) for cid, cg in cgroups.items()}
        self.failed = {cid: r for cid, r in readings.items() if isinstance(r, str)}
        self.first = {cid: r for cid, r in readings.items() if isinstance(r, Reading)}
        self.cgroups = {cid: cg for cid, cg in cgroups.items() if cid in self.first}
        self._second: dict[str, Reading | str] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._take_second, name="opscheck-cgroup", daemon=True)
        self._thread.start()

    def _read(self, cgroup: Cgroup) -> Reading | str:
        try:
            return read(cgroup, self.host_bytes)
        except (OSError, ValueError, KeyError) as exc:
            return f"no cgroup reading ({cgroup.memory}): {type(exc).__name__}: {exc}"

    def _take_second(self) -> None:
        try:
            if self.first:
                first = min(r.at for r in self.first.values())
                time.sleep(max(0.0, CPU_INTERVAL - (time.monotonic() - first)))
            self._second = {cid: self._read(cg) for cid, cg in self.cgroups.items()}
        finally:
            self._done.set()

    def oom_kills(self, container_id: str) -> int | None:
        reading = self.first.get(container_id)
        return reading.oom_kills if reading is not None else None

    def sample(self, container_id: str) -> dict[str, Any] | str | None:
        """The container's sample, or why there is none; None when it is not sampled here."""
        if container_id not in self.cgroups:
            return None
        self._done.wait(CPU_INTERVAL + 5.0)
        second = self._second.get(container_id, "no second cgroup reading")
        if isinstance(second, str):
            return second
        return sample_of(self.cgroups[container_id], self.first[container_id], second)

    def close(self) -> None:
        self._thread.join(CPU_INTERVAL + 5.0)


@dataclass(frozen=True)
class KernelKill:
    """One OOM kill the kernel logged."""

    when: float  # epoch seconds (from the kernel's clock since boot)
    task: str
    pid: int
    line: str  # the kernel's "Killed process ..." line, or its "oom-kill:" line


def kernel_oom_kills(container_id: str, device: str = KMSG) -> list[KernelKill] | str:
    """The OOM kills the kernel log records in the container's memory cgroup, oldest first; or why the log
    cannot be read here (it needs root or CAP_SYSLOG; older kills may have left its ring buffer)."""
    try:
        fd = os.open(device, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return f"kernel log not readable ({device}: {exc.strerror or type(exc).__name__})"
    records: list[tuple[int, str]] = []
    try:
        while True:
            try:
                data = os.read(fd, 16384)
            except BlockingIOError:
                break
            except BrokenPipeError:  # records overwritten while reading: go on with the next
                continue
            if not data:
                break
            head, _, message = data.decode("utf-8", errors="replace").partition(";")
            fields = head.split(",")
            if len(fields) >= 3 and fields[2].isdigit():
                records.append((int(fields[2]), message.split("\n", 1)[0]))
    except OSError as exc:
        return f"kernel log not readable ({device}: {exc.strerror or type(exc).__name__})"
    finally:
        os.close(fd)
    boot = time.time() - time.monotonic()
    kills: list[KernelKill] = []
    for index, (micros, message) in enumerate(records):
        named = _OOM_LINE.search(message) if container_id in message else None
        if named is None and (container_id not in message or _OLD_OOM_LINE.search(message) is None):
            continue
        pid = int(named.group("pid")) if named else None
        killed = next((k for _, m in records[index + 1 : index + 40] if (k := _KILLED.search(m))
                       and (pid is None or int(k.group("pid")) == pid)), None)
        when = boot + micros / 1e6
        if killed is not None:
            kills.append(KernelKill(when, killed.group("task"), int(killed.group("pid")), killed.string.strip()))
        elif named is not None:
            kills.append(KernelKill(when, named.group("task"), int(named.group("pid")), message.strip()))
    return kills
