"""The demo target as a Compose stack, with no registry: one image imported here from busybox-static, whose
containers run the host's own PostgreSQL and Python (bind-mounted read-only) on the host's network, bound to
127.0.0.1 only. The stack is a project of its own, brought down (`docker compose down`) when the demo stops.
"""

from __future__ import annotations

import io
import json
import os
import pwd
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo.provision import DEMO, HOST, ROOT, Cluster, DemoError

IMAGE = "opscheck-demo-busybox:1"
BUSYBOX = Path("/bin/busybox")


def _docker(*args: str, timeout: float = 30, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kwargs)


def unavailable() -> str | None:
    """Why the demo cannot run as a Compose stack here, else None."""
    if shutil.which("docker") is None:
        return "no docker CLI"
    host = os.environ.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        return f"DOCKER_HOST={host} is not this machine's engine: the stack bind-mounts this machine's Python"
    if not BUSYBOX.exists():
        return "no /bin/busybox to make the image from (apt-get install busybox-static)"
    try:
        if _docker("version", "--format", "{{.Server.Version}}", timeout=10).returncode != 0:
            return "no Docker engine reachable"
        if _docker("compose", "version", timeout=10).returncode != 0:
            return "no Compose v2 (docker compose)"
    except subprocess.TimeoutExpired:
        return "the Docker engine does not answer"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres user to run the database container as (apt-get install postgresql)"
    return None


def ensure_image() -> None:
    """The busybox image, imported from busybox-static's binary (`docker import`), once."""
    if _docker("image", "inspect", IMAGE).returncode == 0:
        return
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in ("bin", "tmp", "etc", "proc", "sys", "dev", "root", "run"):
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        tar.add(str(BUSYBOX), arcname="bin/busybox")
        for applet in applets:
            if applet != "busybox":
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type = tarfile.SYMTYPE
                link.linkname = "busybox"
                tar.addfile(link)
        for name, text in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), ("etc/group", "root:x:0:\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    result = subprocess.run(["docker", "import", "-", IMAGE], input=buffer.getvalue(), capture_output=True,
                            timeout=120)
    if result.returncode != 0:
        raise DemoError(f"docker import of busybox failed: {result.stderr.decode(errors='replace')[-500:]}")


def host_mounts() -> list[str]:
    """Read-only bind mounts of what the host's Python and PostgreSQL need, and of demo/."""
    paths = ["/usr", "/lib", "/lib64", "/lib32", "/libx32", sys.prefix, sys.base_prefix, str(DEMO)]
    chosen: list[str] = []
    for path in paths:
        if not os.path.exists(path):
            continue
        if any(path == p or path.startswith(p.rstrip("/") + "/") for p in chosen):
            continue
        chosen.append(path)
    return [f"{p}:{p}:ro" for p in chosen]


def _healthcheck(test: list[str]) -> dict[str, Any]:
    # Every second (start_interval needs Docker Engine 25; Debian's is older).
    return {"test": ["CMD", *test], "interval": "1s", "timeout": "3s", "retries": 3, "start_period": "30s"}


def stack_yaml(
    name: str, fault: str, cluster: Cluster, commands: dict[str, list[str]], ports: dict[str, int]
) -> str:
    """The compose file: db, backend, frontend, smtp, each on the host's network (127.0.0.1 only)."""
    mounts = host_mounts()
    app_env = ["DEMO_FAULT", "DATABASE_URL", "JWT_SECRET", "DEMO_USER", "DEMO_PASSWORD", "DEMO_FRONTEND_ORIGIN",
               "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"]
    postgres = pwd.getpwnam("postgres")

    def app(name: str, health: str | None) -> dict[str, Any]:
        service: dict[str, Any] = {
            "image": IMAGE,
            "network_mode": "host",
            "working_dir": str(ROOT),
            "command": commands[name],
            "environment": app_env,
            "volumes": mounts,
            "restart": "no",
            "stop_grace_period": "5s",
        }
        if health:
            service["healthcheck"] = _healthcheck(["wget", "-q", "-O", "/dev/null", f"http://{HOST}:{ports[name]}{health}"])
        return service

    services = {
        "db": {
            "image": IMAGE,
            "network_mode": "host",
            "user": f"{postgres.pw_uid}:{postgres.pw_gid}",
            "command": cluster.server_command(),
            "volumes": [*mounts, "/etc/passwd:/etc/passwd:ro", "/etc/group:/etc/group:ro",
                        f"{cluster.base}:{cluster.base}"],
            "stop_signal": "SIGINT",
            "stop_grace_period": "10s",
            "shm_size": "128m",
            "healthcheck": _healthcheck([str(cluster.bin / "pg_isready"), "-q", "-h", HOST, "-p", str(cluster.port)]),
        },
        "backend": app("backend", "/health"),
        "frontend": app("frontend", "/"),
        "smtp": app("smtp", None),
    }
    if fault == "crash-loop":
        services["backend"]["restart"] = "always"
    header = ("# Written by demo/run.py: the opscheck demo target as a Compose stack. No image is built or pulled:\n"
              "# busybox (imported from busybox-static) runs the host's PostgreSQL and Python, mounted read-only.\n")
    return header + "\n".join(_yaml({"name": name, "services": services})) + "\n"


def _yaml(value: Any, indent: int = 0) -> list[str]:
    """Block YAML of dicts, lists and scalars (strings double-quoted, as JSON, which YAML reads the same)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, list) and all(isinstance(i, str | int) for i in item) and len(json.dumps(item)) < 100:
                lines.append(f"{pad}{key}: {json.dumps(item)}")  # a short list of scalars, in flow style
            elif isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                lines.extend(_yaml(item, indent + 2))
            else:
                lines.append(f"{pad}{key}: {json.dumps(item)}")
    else:
        for item in value:
            if isinstance(item, dict | list) and item:
                nested = _yaml(item, indent + 2)
                lines.append(f"{pad}- {nested[0].lstrip()}")
                lines.extend(nested[1:])
            else:
                lines.append(f"{pad}- {json.dumps(item)}")
    return lines


@dataclass
class Project:
    """A Compose project of the demo's own, which `down()` removes with its containers."""

    name: str
    folder: Path
    started: bool = False

    @property
    def file(self) -> Path:
        return self.folder / "docker-compose.yml"

    def write(self, text: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.file.write_text(text)

    def compose(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return _docker("compose", "-p", self.name, "-f", str(self.file), *args, timeout=timeout, env=env,
                       cwd=self.folder)

    def up(self, services: list[str], env: dict[str, str], logs: Path) -> None:
        ensure_image()
        self.started = True
        result = self.compose("up", "-d", "--no-build", "--pull", "never", *services, env=env)
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / "compose.log").open("a") as log:
            log.write(result.stdout + result.stderr)
        if result.returncode != 0:
            raise DemoError(f"docker compose up {' '.join(services)} failed: {result.stderr.strip()[-800:]}")

    def stop(self, service: str) -> None:
        result = self.compose("stop", "-t", "10", service)
        if result.returncode != 0:
            raise DemoError(f"docker compose stop {service} failed: {result.stderr.strip()[-500:]}")

    def down(self) -> None:
        if not self.started:
            return
        self.compose("down", "-v", "--remove-orphans", "-t", "5", timeout=180)
        self.started = False

    def containers(self) -> dict[str, dict[str, Any]]:
        """service → `docker compose ps` record (all containers, running or not)."""
        result = self.compose("ps", "-a", "--format", "json", timeout=30)
        records: dict[str, dict[str, Any]] = {}
        text = result.stdout.strip()
        if not text:
            return records
        items = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines()]
        for item in items:
            records[item["Service"]] = item
        return records

    def restart_count(self, container: str) -> int:
        result = _docker("inspect", "--format", "{{.RestartCount}}", container)
        return int(result.stdout.strip() or 0) if result.returncode == 0 else 0

    def logs_tail(self, service: str) -> str:
        result = self.compose("logs", "--no-color", "--tail", "15", service, timeout=30)
        return "\n  ".join((result.stdout + result.stderr).strip().splitlines())

    def wait_ready(self, services: dict[str, str], seconds: float = 90) -> None:
        """Wait until each service is in its wanted state: `healthy`, `running` or `restarting` (has crashed)."""
        deadline = time.monotonic() + seconds
        pending = dict(services)
        while True:
            states = self.containers()
            for service, wanted in list(pending.items()):
                record = states.get(service)
                if record is None:
                    continue
                if wanted == "restarting":
                    reached = self.restart_count(record["ID"]) >= 1
                else:
                    reached = record.get("Health" if wanted == "healthy" else "State") == wanted
                if reached:
                    del pending[service]
                elif wanted != "restarting" and record.get("State") in ("exited", "dead"):
                    raise DemoError(f"the {service} service exited at start:\n  {self.logs_tail(service)}")
            if not pending:
                return
            if time.monotonic() > deadline:
                service = next(iter(pending))
                raise DemoError(f"the {service} service is not {pending[service]} after {seconds:g} s:\n  "
                                f"{self.logs_tail(service)}")
            time.sleep(0.5)
