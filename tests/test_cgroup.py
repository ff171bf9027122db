"""Container figures from cgroup files on a local engine, against a real Docker engine: they agree with the
engine's stats API on a container burning CPU under a limit; the engine's API is the source where cgroups cannot
be read; and a process OOM-killed inside a container whose main process lives is seen, named, and dated."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from realservices import ComposeProject

from pytest_opscheck.config import Settings
from pytest_opscheck.probes.diagnosis import host
from pytest_opscheck.probes.diagnosis import stack as diagnosis
from pytest_opscheck.probes.resource import compose
from pytest_opscheck.probes.transport import cgroup
from pytest_opscheck.probes.transport.engine import ContainerStats

CPUS = 0.2  # the burner's CPU limit: a fifth of one CPU, which a loaded 2-core machine still gives it
BUSY = """
name: {name}
services:
  burn:
    image: ${{BUSYBOX}}
    network_mode: none
    cpus: {cpus}
    mem_limit: 64m
    command: ["sh", "-c", "while :; do :; done"]
  idle:
    image: ${{BUSYBOX}}
    network_mode: none
    command: ["sleep", "3600"]
"""
# `tail /dev/zero` reads one endless line into memory: the OOM killer takes it, and `sh` (PID 1) goes on.
LEAKY = """
name: {name}
services:
  leaky:
    image: ${{BUSYBOX}}
    network_mode: none
    mem_limit: 16m
    memswap_limit: 16m
    command: ["sh", "-c", "tail /dev/zero; exec sleep 3600"]
  calm:
    image: ${{BUSYBOX}}
    network_mode: none
    command: ["sleep", "3600"]
"""


@contextmanager
def running(text: str, image: str, folder: Path, **values: Any) -> Iterator[str]:
    """A Compose project of `text` up for the module's tests, and down after them (the burner must not burn
    through the rest of a session)."""
    name = f"opscg{uuid.uuid4().hex[:8]}"
    project = ComposeProject(name, folder / name)
    try:
        project.up(text.format(name=name, **values).replace("${BUSYBOX}", image))
        yield name
    finally:
        project.down()


def opened(name: str) -> compose.ComposeStack:
    return compose.open_stack(Settings(compose_project=name, timeout=2.0))


@pytest.fixture(scope="module")
def busy(compose_stack: Any, busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # compose_stack: only for its check that Compose is there (it skips loudly when not)
    with running(BUSY, busybox_image, tmp_path_factory.mktemp("cgroup"), cpus=CPUS) as name:
        time.sleep(1.0)  # the burner settles at its limit
        yield name


@pytest.fixture(scope="module")
def leaky(compose_stack: Any, busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running(LEAKY, busybox_image, tmp_path_factory.mktemp("cgroup")) as name:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            stack = opened(name)
            try:
                if (next(c for c in stack.containers if c.service == "leaky").oom_kills or 0) >= 1:
                    break
            finally:
                stack.close()
            time.sleep(0.5)
        else:
            pytest.fail("the OOM kill inside leaky did not happen within 60 s")
        yield name


def engine_sample(client: Any, container_id: str, key: str, into: dict[str, dict[str, Any]]) -> None:
    """The engine's own stats sample of the container, into `into[key]`."""
    into[key] = client.api.stats(container_id, stream=False)


def test_cgroup_and_engine_stats_agree_on_a_busy_container(busy: str, docker_engine: Any) -> None:
    """Each pair: the product's sample (two cgroup readings 0.2 s apart) taken while the engine's API takes its
    own (about a second): their medians over three pairs agree within a few points."""
    ours: dict[str, list[float]] = {"burn": [], "idle": []}
    engine: dict[str, list[float]] = {"burn": [], "idle": []}
    memory: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for _ in range(3):
        stack = opened(busy)
        try:
            by_service = {c.service: c for c in stack.containers}
            api: dict[str, dict[str, Any]] = {}
            threads = [threading.Thread(target=engine_sample, args=(docker_engine, by_service[s].attrs["Id"], s, api))
                       for s in ours]
            for thread in threads:
                thread.start()
            samples = {s: stack.stats_or_reason(by_service[s]) for s in ours}
            for thread in threads:
                thread.join(10)
        finally:
            stack.close()
        for service, sample in samples.items():
            assert isinstance(sample, dict), sample
            assert sample[cgroup.SOURCE_KEY].startswith("cgroup v"), sample[cgroup.SOURCE_KEY]
            ours[service].append(host.cpu_percent(sample) or 0.0)
            engine[service].append(host.cpu_percent(api[service]) or 0.0)
            memory.append((service, sample["memory_stats"], api[service]["memory_stats"]))
    burn, burn_api = statistics.median(ours["burn"]), statistics.median(engine["burn"])
    assert abs(burn - burn_api) <= 5.0, (ours, engine)
    assert 5.0 <= burn <= CPUS * 100 + 5.0, ours  # it burns, and no more than its limit
    assert statistics.median(ours["idle"]) <= 2.0 and statistics.median(engine["idle"]) <= 2.0, (ours, engine)
    for service, mine, theirs in memory:
        assert mine["limit"] == theirs["limit"], service  # 64 MiB, or the host's memory when there is no limit
        assert abs(mine["usage"] - theirs["usage"]) <= 1 << 20, (service, mine["usage"], theirs["usage"])
    assert {m["limit"] for s, m, _ in memory if s == "burn"} == {64 << 20}


def test_memory_and_cpu_checks_say_where_their_figures_came_from(busy: str) -> None:
    stack = opened(busy)
    try:
        finding = host.cpu(stack, 90)
        memory = host.memory_headroom(stack, 90)
    finally:
        stack.close()
    assert finding.ok and memory.ok
    for evidence in (finding.evidence, memory.evidence):
        source = evidence["figures from"]
        assert source.startswith("cgroup v1 files under ") or source.startswith("cgroup v2 files under "), source
        assert f"{busy}-burn-1" in source and f"{busy}-idle-1" in source
    assert f"{busy}-burn-1" in finding.evidence["cpu"]


def test_the_engine_api_is_the_source_where_cgroups_cannot_be_read(busy: str, docker_engine: Any) -> None:
    stack = opened(busy)
    try:
        burn = next(c for c in stack.containers if c.service == "burn")
        info = stack.engine_info
    finally:
        stack.close()
    cid = burn.attrs["Id"]
    cases = {
        "remote": (ContainerStats(docker_engine, 2.0, "tcp://192.0.2.1:2376", info), "is not on this host"),
        "rootless": (ContainerStats(docker_engine, 2.0, "unix:///run/user/1000/docker.sock",
                                    {**info, "SecurityOptions": ["name=seccomp", "name=rootless"]}), "rootless"),
        # A cgroup parent that does not exist and no pid: nothing to read here.
        "unreadable": (ContainerStats(docker_engine, 2.0, "unix:///var/run/docker.sock",
                                      {**info, "CgroupDriver": "systemd"}), "its cgroup is not readable here"),
    }
    try:
        for label, (stats, _) in cases.items():
            stats.start([cid])
            if label == "unreadable":
                stats.attach([(cid, 0, "nowhere-opscheck.slice")])
        for label, (stats, reason) in cases.items():
            sample = stats.sample(cid)
            assert isinstance(sample, dict), (label, sample)
            assert sample[cgroup.SOURCE_KEY].startswith("the engine's stats API ("), sample[cgroup.SOURCE_KEY]
            assert reason in sample[cgroup.SOURCE_KEY], (label, sample[cgroup.SOURCE_KEY])
            assert host.cpu_percent(sample) is not None
            assert stats.oom_kills(cid) is None
    finally:
        for stats, _ in cases.values():
            stats.close()


def test_cgroup_found_by_pid_or_by_the_driver_naming(busy: str) -> None:
    stack = opened(busy)
    try:
        burn = next(c for c in stack.containers if c.service == "burn")
    finally:
        stack.close()
    cid, pid = burn.attrs["Id"], int(burn.state["Pid"])
    where = cgroup.mounts()
    by_pid = cgroup.locate(cid, pid, "cgroupfs", "", where)
    assert isinstance(by_pid, cgroup.Cgroup) and cid in str(by_pid.memory) and cid in str(by_pid.cpu)
    # No pid (a pid namespace apart), or a pid that is another process here: the driver's naming finds it.
    for other in (0, os.getpid()):
        assert cgroup.locate(cid, other, "cgroupfs", "", where) == by_pid
    assert cgroup.driver_paths(cid, "systemd", "") == [f"/system.slice/docker-{cid}.scope"]
    assert cgroup.driver_paths(cid, "systemd", "app-web.slice") == [f"/app.slice/app-web.slice/docker-{cid}.scope"]
    assert cgroup.driver_paths(cid, "cgroupfs", "/ci/jobs") == [f"/ci/jobs/{cid}"]
    reading = cgroup.read(by_pid, cgroup.host_memory())
    assert reading.cpu_ns > 0 and reading.memory["limit"] == 64 << 20 and reading.oom_kills == 0


def test_cgroup_v2_files_are_read_as_the_kernel_writes_them(busy: str, tmp_path: Path) -> None:
    """This machine mounts cgroup v1 (v2 without controllers, as a hybrid): the v2 CPU counter is the real
    unified one of the container; the v2 memory files, which no v2 controller here writes, are the kernel's
    format copied by hand."""
    stack = opened(busy)
    try:
        burn = next(c for c in stack.containers if c.service == "burn")
    finally:
        stack.close()
    where = cgroup.mounts()
    paths = cgroup.process_paths(int(burn.state["Pid"]))
    if where.v2 is None or "" not in paths:
        pytest.skip("no cgroup v2 hierarchy mounted here")
    unified = where.v2.directory(paths[""])
    assert unified is not None and (unified / "cpu.stat").exists()
    (tmp_path / "memory.current").write_text("7340032\n")
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "memory.peak").write_text("9437184\n")
    (tmp_path / "memory.stat").write_text("anon 5242880\nfile 2097152\ninactive_file 1048576\n")
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n")
    files = cgroup.Cgroup(unified, 2, tmp_path, 2)
    first = cgroup.read(files, 1 << 34)
    time.sleep(0.2)
    second = cgroup.read(files, 1 << 34)
    sample = cgroup.sample_of(files, first, second)
    assert sample["memory_stats"] == {
        "usage": 7340032, "limit": 1 << 34, "max_usage": 9437184,
        "stats": {"anon": 5242880, "file": 2097152, "inactive_file": 1048576},
    }
    assert second.oom_kills == 2
    assert 5.0 <= (host.cpu_percent(sample) or 0.0) <= CPUS * 100 + 10.0  # the burner, through cpu.stat
    assert sample[cgroup.SOURCE_KEY].startswith("cgroup v2 files under ")


def test_process_oom_killed_while_pid1_lives_is_named_with_when(leaky: str) -> None:
    stack = opened(leaky)
    try:
        container = next(c for c in stack.containers if c.service == "leaky")
        finding = diagnosis.no_oom_kill(stack)
    finally:
        stack.close()
    # What the engine says: running, not OOM-killed. What the cgroup says: a kill.
    assert container.status == "running" and container.state["OOMKilled"] is False
    assert (container.oom_kills or 0) >= 1
    assert not finding.ok
    name = f"{leaky}-leaky-1"
    assert finding.cause.startswith(f"killed by the OOM killer: {container.oom_kills} process")
    assert f"in leaky ({name}) while it runs" in finding.cause
    assert f"{leaky}-calm-1" not in finding.cause
    assert "its main process lives" in finding.evidence[name]
    assert "memory limit 16.0 MiB" in finding.evidence[name]
    log = finding.evidence[f"{name}: kernel log"]
    if os.access(cgroup.KMSG, os.R_OK):
        assert "Killed process" in log and "(tail)" in log and " UTC (" in log, log
        assert ", the last (tail) " in finding.cause
    else:
        assert "kernel log not readable" in log
    assert f"docker compose -p {leaky} logs leaky --tail=100" in finding.evidence["commands to run"]


def test_no_kill_passes_and_the_sweep_reports_the_kill_inside(
    pytester: pytest.Pytester, busy: str, leaky: str
) -> None:
    stack = opened(busy)
    try:
        assert diagnosis.no_oom_kill(stack).ok
        assert "kills inside containers" not in diagnosis.no_oom_kill(stack).evidence  # every counter was read
    finally:
        stack.close()
    pytester.makefile(".toml", opscheck=f'compose_project = "{leaky}"\ntimeout = 2\n')
    pytester.runpytest_subprocess(
        "--opscheck", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-k", "stack.no_oom_kill or stack.cpu",
        "--opscheck-json", "out.json", timeout=120,
    )
    records = {r["id"]: r for r in json.loads((pytester.path / "out.json").read_text())["checks"]}
    assert records["stack.no_oom_kill"]["outcome"] == "failed"
    assert f"in leaky ({leaky}-leaky-1) while it runs" in records["stack.no_oom_kill"]["message"]
    assert records["stack.cpu"]["outcome"] == "passed"
    assert records["stack.cpu"]["evidence"]["figures from"].startswith("cgroup v")
