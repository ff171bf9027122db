"""The compose probe against a real Docker engine with Compose v2: no mocks, traffic to 127.0.0.1 only."""

from __future__ import annotations

import io
import os
import socket
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from realservices import free_port

from pytest_opscheck.config import Settings
from pytest_opscheck.probes.diagnosis import host, network
from pytest_opscheck.probes.diagnosis import stack as diagnosis
from pytest_opscheck.probes.resource import compose, compose_file
from pytest_opscheck.probes.result import TargetUnreachable
from pytest_opscheck.probes.transport import engine

PLANTED = "PLANTED-secret-value-0123456789abcdef"


def settings_for(folder: Path, **values: Any) -> Settings:
    return Settings(compose_file="docker-compose.yml", base_dir=str(folder), timeout=2.0, **values)


# --- the compose file, as Compose reads it (no engine needed) ---------------------------------------------


def test_project_name_follows_compose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMPOSE_PROJECT_NAME", raising=False)
    folder = tmp_path / "My App.v2"
    folder.mkdir()
    (folder / "docker-compose.yml").write_text("services:\n  web:\n    image: x\n")
    settings = settings_for(folder)

    def name() -> str:
        return compose_file.project_name(settings, compose_file.read_compose_file(folder / "docker-compose.yml", 2))

    assert name() == "myappv2"  # the folder, lowercased, characters outside [a-z0-9_-] dropped
    (folder / "docker-compose.yml").write_text("name: ${STACK:-fromfile}\nservices:\n  web:\n    image: x\n")
    assert name() == "fromfile"
    (folder / ".env").write_text("COMPOSE_PROJECT_NAME=fromdotenv\n")
    assert name() == "fromdotenv"
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", "fromenv")
    assert name() == "fromenv"
    assert compose_file.project_name(Settings(compose_project="explicit"), None) == "explicit"


def test_compose_file_services_profiles_jobs_and_host_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMPOSE_PROFILES", raising=False)
    monkeypatch.delenv("WEB_PORT", raising=False)
    path = tmp_path / "docker-compose.yml"
    path.write_text(
        """
services:
  backend:
    image: x
    network_mode: host
    ports: ["${WEB_PORT:-8000}:8080", "127.0.0.1:9000:9001/tcp", "53:53/udp", {target: 7000, published: 7001}]
    expose: ["3000-3002"]
    depends_on:
      prestart: {condition: service_completed_successfully}
      db: {condition: service_started}
  prestart: {image: x, command: "true"}
  db: {image: x}
  debug: {image: x, profiles: [debug]}
"""
    )
    (tmp_path / ".env").write_text("WEB_PORT=8001\n")
    model = compose_file.read_compose_file(path, 2)
    assert model.active_services() == ["backend", "db", "prestart"]
    assert model.jobs() == {"prestart"}
    assert model.host_ports("backend") == [3000, 3001, 3002, 7000, 8080, 9001]
    assert model.network_mode("backend") == "host"
    monkeypatch.setenv("COMPOSE_PROFILES", "debug")
    assert "debug" in compose_file.read_compose_file(path, 2).active_services()


def test_unreadable_compose_file_is_one_cause(tmp_path: Path) -> None:
    with pytest.raises(TargetUnreachable) as info:
        compose_file.read_compose_file(tmp_path / "docker-compose.yml", 2)
    assert "cannot read compose file" in info.value.cause and "\n" not in info.value.cause
    (tmp_path / "docker-compose.yml").write_text("services: [\n")
    with pytest.raises(TargetUnreachable) as info:
        compose_file.read_compose_file(tmp_path / "docker-compose.yml", 2)
    assert "is not valid YAML at line" in info.value.cause


def test_interpolation_forms() -> None:
    variables = {"A": "1", "EMPTY": ""}
    text = "${A}-${B:-2}-${EMPTY:-3}-${EMPTY-4}-$A-$$A-${A:+set}"
    assert compose_file.interpolate(text, variables) == "1-2-3--1-$A-set"


# --- an engine that cannot be reached: one plain cause each ------------------------------------------------


def unreachable_cause(monkeypatch: pytest.MonkeyPatch, docker_host: str, timeout: float = 1.0) -> str:
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    started = time.monotonic()
    with pytest.raises(TargetUnreachable) as info:
        engine.connect_engine(timeout)
    assert time.monotonic() - started < timeout + 5
    assert info.value.target == "docker" and "\n" not in info.value.cause
    return info.value.cause


def test_no_socket(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cause = unreachable_cause(monkeypatch, f"unix://{tmp_path}/docker.sock")
    assert cause == f"no Docker engine at unix://{tmp_path}/docker.sock: is dockerd running? (or set DOCKER_HOST)"


def test_wrong_docker_host_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    cause = unreachable_cause(monkeypatch, f"tcp://127.0.0.1:{port}")
    assert cause.startswith(f"connection refused by the Docker engine at tcp://127.0.0.1:{port}")


def test_engine_that_never_answers_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as silent:  # accepts in the kernel's backlog, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        cause = unreachable_cause(monkeypatch, f"tcp://127.0.0.1:{port}")
    assert cause == f"timed out after 1 s waiting for the Docker engine at tcp://127.0.0.1:{port}"


def test_socket_without_permission(monkeypatch: pytest.MonkeyPatch) -> None:
    """A user outside the docker group: the socket exists but refuses them (root cannot be refused: drop to nobody)."""
    import docker  # imported before dropping privileges: nobody cannot read this interpreter's site-packages

    assert docker
    folder = Path(tempfile.mkdtemp(prefix="opscheck-perm-"))
    folder.chmod(0o755)
    path = folder / "docker.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(1)
    path.chmod(0o600)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:  # the child: become nobody, try the engine, report the cause through the pipe
            code = 0
            try:
                os.close(read_end)
                os.setgid(65534)
                os.setuid(65534)
                try:
                    engine.connect_engine(1.0)
                    message = "connected?!"
                except TargetUnreachable as exc:
                    message = exc.cause
                os.write(write_end, message.encode())
            except BaseException:  # noqa: BLE001 - whatever happens, the child must not return into pytest
                code = 1
            finally:
                os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            message = pipe.read().decode()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        listener.close()
        path.unlink(missing_ok=True)
        folder.rmdir()
    assert message == f"permission denied on unix://{path}: run as a member of the docker group, or as root"


# --- a real stack --------------------------------------------------------------------------------------------


def minimal_image(client: Any, tag: str, shell: bool) -> str:
    """An image with busybox (for its `sleep`) and, when `shell`, dash as /bin/sh: no nc, python3, bash, timeout.

    Busybox's own shell would find its nc and timeout applets, so the shell here is Debian's dash.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in ("bin", "tmp", "proc", "sys", "dev", "etc", "lib64", "lib", "lib/x86_64-linux-gnu"):
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        tar.add("/bin/busybox", arcname="bin/busybox")
        if shell:
            tar.add("/bin/dash", arcname="bin/sh")
            for library in ("/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"):
                tar.add(os.path.realpath(library), arcname=library.lstrip("/"))
            tar.add(os.path.realpath("/lib64/ld-linux-x86-64.so.2"), arcname="lib64/ld-linux-x86-64.so.2")
    repository, _, version = tag.partition(":")
    client.api.import_image_from_data(buffer.getvalue(), repository=repository, tag=version)
    return tag


def probe_yaml(name: str, app_port: int, taken_port: int) -> str:
    return f"""
name: {name}
services:
  app:
    image: ${{BUSYBOX}}
    network_mode: host
    command: httpd -f -p 127.0.0.1:{app_port} -h /tmp
    expose: ["{app_port}"]
    environment:
      SECRET_KEY: "{PLANTED}"
  crashy:
    image: ${{BUSYBOX}}
    network_mode: none
    restart: always
    command: sh -c 'sleep 2; exit 1'
  hog:
    image: ${{BUSYBOX}}
    network_mode: none
    mem_limit: 8m
    memswap_limit: 8m
    command: sh -c 'exec dd if=/dev/zero of=/dev/null bs=64M count=1'
  web:
    image: ${{BUSYBOX}}
    network_mode: host
    command: nc -l -p {taken_port}
    expose: ["{taken_port}"]
  isolated:
    image: ${{BUSYBOX}}
    network_mode: none
    command: sleep 3600
  bare:
    image: opscheck-test-bare:latest
    network_mode: none
    command: ["/bin/busybox", "sleep", "3600"]
  noshell:
    image: opscheck-test-noshell:latest
    network_mode: none
    command: ["/bin/busybox", "sleep", "3600"]
"""


# How long the faults may take to happen on a slow engine (vfs storage, a busy 2-core machine).
SETTLE_SECONDS = 180


@pytest.fixture(scope="module")
def probe_stack(
    compose_stack: Any, docker_engine: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, int, int]]:
    minimal_image(docker_engine, "opscheck-test-bare:latest", shell=True)
    minimal_image(docker_engine, "opscheck-test-noshell:latest", shell=False)
    name = f"opsprobe{uuid.uuid4().hex[:6]}"
    app_port = free_port()
    with socket.socket() as holder:  # the port `web` wants, held by this test: a real port conflict
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        taken = holder.getsockname()[1]
        yaml = probe_yaml(name, app_port, taken)
        compose_stack(yaml, name)
        folder = tmp_path_factory.mktemp("probe")
        (folder / "docker-compose.yml").write_text(yaml.replace("${BUSYBOX}", "busybox"))
        label = {"label": f"com.docker.compose.project={name}"}

        def settled() -> bool:
            found = {c.labels["com.docker.compose.service"]: c.attrs
                     for c in docker_engine.containers.list(all=True, filters=label)}
            hog = found["hog"]["State"]  # killed: flagged by the engine, or its event missed and the SIGKILL seen
            return bool((hog["OOMKilled"] or hog["ExitCode"] == 137) and found["web"]["State"]["Status"] == "exited")

        deadline = time.monotonic() + SETTLE_SECONDS
        while not settled():
            if time.monotonic() > deadline:
                pytest.fail(f"the faults did not happen within {SETTLE_SECONDS} s (OOM kill of hog, web exited)")
            time.sleep(0.3)
        yield settings_for(folder), app_port, taken


@pytest.fixture
def opened(probe_stack: tuple[Settings, int, int]) -> Iterator[compose.ComposeStack]:
    stack = compose.open_stack(probe_stack[0])
    yield stack
    stack.close()


def test_open_finds_services_by_label_and_ignores_oneoff(
    probe_stack: tuple[Settings, int, int], docker_engine: Any, busybox_image: str
) -> None:
    settings = probe_stack[0]
    model = compose_file.read_compose_file(settings.path("docker-compose.yml"), 2)
    project = compose_file.project_name(settings, model)
    oneoff = docker_engine.containers.run(  # what `docker compose run` leaves behind: must not count
        busybox_image, ["sh", "-c", "exit 5"], detach=True, network_mode="none",
        labels={compose.PROJECT: project, compose.SERVICE: "app", compose.ONEOFF: "True"},
    )
    try:
        oneoff.wait(timeout=30)
        stack = compose.open_stack(settings)
        try:
            assert stack.project == project
            assert {c.service for c in stack.containers} == {
                "app", "crashy", "hog", "web", "isolated", "bare", "noshell"
            }
            assert oneoff.name not in {c.name for c in stack.containers}
            assert [c.name for c in stack.of_service("app")] == [f"{project}-app-1"]
        finally:
            stack.close()
    finally:
        oneoff.remove(force=True)


def test_stats_are_sampled_concurrently(probe_stack: tuple[Settings, int, int]) -> None:
    started = time.monotonic()
    stack = compose.open_stack(probe_stack[0])
    try:
        running = [c for c in stack.containers if c.status == "running" and c.service != "crashy"]
        assert len(running) >= 4
        samples = [stack.stats(c) for c in running]
        elapsed = time.monotonic() - started
    finally:
        stack.close()
    empty = [c.name for c, s in zip(running, samples, strict=True) if not (s and s.get("memory_stats"))]
    assert not empty, [(c.name, c.status, s) for c, s in zip(running, samples, strict=True) if c.name in empty]
    # One sample takes about a second (the engine waits for a second reading); one after the other this is 4 s+.
    assert elapsed < 3.5, f"{len(running)} samples took {elapsed:.1f} s"
    assert host.cpu_percent(samples[0]) is not None


def test_oom_kill_is_real_and_reported(opened: compose.ComposeStack) -> None:
    finding = diagnosis.no_oom_kill(opened)
    assert not finding.ok
    assert finding.cause == f"killed by the OOM killer: hog ({opened.project}-hog-1)"
    assert "memory limit 8.0 MiB" in finding.evidence[f"{opened.project}-hog-1"]
    assert "dmesg | grep -i oom" in finding.evidence["on the host"]


def test_restart_during_the_sweep_is_a_crash_loop(opened: compose.ComposeStack) -> None:
    crashy = opened.of_service("crashy")[0]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = opened.refreshed(crashy)
        if now is not None and now.restart_count > crashy.restart_count:
            break
        time.sleep(0.2)
    finding = diagnosis.no_crash_loop(opened)
    assert not finding.ok
    assert f"crashy ({opened.project}-crashy-1)" in finding.cause
    assert "during the sweep" in finding.cause or "restarting" in finding.cause
    assert f"cd {opened.compose.folder if opened.compose else ''} && docker compose logs crashy --tail=100" in (
        finding.evidence["commands to run"]
    )


def test_port_conflict_names_the_port(opened: compose.ComposeStack, probe_stack: tuple[Settings, int, int]) -> None:
    _, app_port, taken = probe_stack
    finding = network.ports_bound(opened, 1.0)
    assert not finding.ok
    assert finding.cause == f"port conflict: web ({opened.project}-web-1) could not bind port {taken}"
    assert f"{app_port}  listening" in finding.evidence["ports"]


def test_backend_reaches_db_with_busybox_nc(
    opened: compose.ComposeStack, probe_stack: tuple[Settings, int, int]
) -> None:
    _, app_port, _ = probe_stack
    started = time.monotonic()
    assert network.backend_reaches_db(opened, "app", f"127.0.0.1:{app_port}", 2.0).ok
    assert time.monotonic() - started < 1.5  # busybox's nc -e returns once connected, no timeout waited out
    refused = free_port()
    finding = network.backend_reaches_db(opened, "app", f"127.0.0.1:{refused}", 2.0)
    assert finding.cause == f"app ({opened.project}-app-1) cannot connect to 127.0.0.1:{refused}: connection refused"
    assert "refused" in next(iter(finding.evidence.values())).lower()


def test_backend_reaches_db_name_that_does_not_resolve(opened: compose.ComposeStack) -> None:
    # network_mode none: the lookup fails inside the container and nothing leaves the host.
    finding = network.backend_reaches_db(opened, "isolated", "db:5432", 2.0)
    assert finding.cause == f"isolated ({opened.project}-isolated-1) cannot resolve db"


def test_backend_reaches_db_says_when_the_image_has_no_tool(opened: compose.ComposeStack) -> None:
    bare = network.backend_reaches_db(opened, "bare", "127.0.0.1:5432", 2.0)
    assert bare.cause == (
        f"cannot test 127.0.0.1:5432 from bare ({opened.project}-bare-1): the image has none of nc, "
        "python3 or bash"
    )
    noshell = network.backend_reaches_db(opened, "noshell", "127.0.0.1:5432", 2.0)
    assert noshell.cause == (
        f"cannot test 127.0.0.1:5432 from noshell ({opened.project}-noshell-1): the image has no shell (sh)"
    )
    missing = network.backend_reaches_db(opened, "backend", "db:5432", 2.0)
    assert "no container of service backend" in missing.cause


def test_secret_values_never_leave_the_probe(opened: compose.ComposeStack) -> None:
    app = opened.of_service("app")[0]
    assert app.env["SECRET_KEY"] == PLANTED  # read from the engine, as the check does
    finding = diagnosis.required_env(opened, {"app": ["SECRET_KEY", "MISSING"]})
    assert PLANTED not in repr(finding)
    assert f"{len(PLANTED)}" in finding.evidence["variables (values never shown)"]
    assert app.scrub(f"booting with {PLANTED}") == "booting with ***"
    code, output = app.exec(["sh", "-c", "echo $SECRET_KEY"])
    assert code == 0 and output.strip() == "***"


def test_placeholder_and_weak_secrets() -> None:
    assert diagnosis.env_verdict("SECRET_KEY", None) == "is not set"
    assert diagnosis.env_verdict("SECRET_KEY", "  ") == "is empty"
    assert diagnosis.env_verdict("POSTGRES_PASSWORD", "changethis") == "holds a placeholder value"
    assert diagnosis.env_verdict("API_TOKEN", "Secret") == "holds a placeholder value"
    assert diagnosis.env_verdict("JWT_SECRET", "x" * 31) == "is too short (31 characters, at least 32)"
    assert diagnosis.env_verdict("JWT_SECRET", "x" * 32) is None
    assert diagnosis.env_verdict("DOMAIN", "example.com") is None


def test_the_probe_never_changes_the_stack(probe_stack: tuple[Settings, int, int], docker_engine: Any) -> None:
    """Opening and every diagnosis read only: the same containers, the same ids, no new ones."""
    settings = probe_stack[0]
    model = compose_file.read_compose_file(settings.path("docker-compose.yml"), 2)
    label = {"label": f"com.docker.compose.project={compose_file.project_name(settings, model)}"}
    before = {c.id for c in docker_engine.containers.list(all=True, filters=label)}
    stack = compose.open_stack(settings)
    try:
        for diagnose in (
            diagnosis.services_running, diagnosis.no_crash_loop, diagnosis.no_oom_kill, diagnosis.healthchecks
        ):
            diagnose(stack)
        diagnosis.logs_clean(stack, settings.log_patterns)
        network.ports_bound(stack, 1.0)
    finally:
        stack.close()
    assert {c.id for c in docker_engine.containers.list(all=True, filters=label)} == before
    assert threading.active_count() < 50


def test_declared_services_without_yaml_come_from_compose(
    probe_stack: tuple[Settings, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    settings = probe_stack[0]
    model = compose_file.read_compose_file(settings.path("docker-compose.yml"), 5)
    assert model.active_services() == ["app", "bare", "crashy", "hog", "isolated", "noshell", "web"]
    assert model.name is not None and model.name.startswith("opsprobe")
