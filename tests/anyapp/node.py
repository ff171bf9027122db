"""Real Node backends for the tests: their npm packages installed once per machine into a cache folder of their
own (keyed by the package list, under a lock so parallel workers install once), and a server run as a process
of its own on a free port, stopped through its own handle."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from realservices import ServiceUnavailable, free_port, wait_for

HERE = Path(__file__).parent
# Pinned majors as the apps they stand for use them: Express 4 with express-session, passport-local and
# passport-jwt, and the legacy subscriptions-transport-ws (Apollo Server 2/3's) with graphql 15 and ws 7.
EXPRESS_PACKAGES = ("express@4", "express-session@1", "passport@0.7", "passport-local@1", "passport-jwt@4",
                    "jsonwebtoken@9", "subscriptions-transport-ws@0.11", "graphql@15", "ws@7")


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pytest-opscheck-tests" / "npm"


def node_modules(packages: tuple[str, ...], timeout: float = 300.0) -> Path:
    """A folder whose node_modules holds `packages` (npm install once; later calls reuse it)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise ServiceUnavailable("node and npm are needed for the Express test backend: apt-get install nodejs npm")
    folder = cache_root() / hashlib.sha256(" ".join(packages).encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / ".installed"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            result = subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error",
                 "--prefix", str(folder), *packages],
                capture_output=True, text=True, timeout=timeout, check=False)
            if result.returncode != 0:
                raise ServiceUnavailable(f"npm install {' '.join(packages)} failed: {result.stderr[-500:]}")
            done.write_text("\n".join(packages))
    return folder


@contextlib.contextmanager
def node_server(script: str, packages: tuple[str, ...], env: dict[str, str]) -> Iterator[str]:
    """Run tests/anyapp/`script` with node on a free port; yields its http:// URL."""
    folder = node_modules(packages)
    port = free_port()
    process = subprocess.Popen(
        ["node", str(HERE / script), str(port)], cwd=folder,
        env={**os.environ, **env, "NODE_PATH": str(folder / "node_modules")},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        import socket

        def listening() -> bool:
            if process.poll() is not None:
                raise ServiceUnavailable(f"node {script} exited: {process.stdout.read() if process.stdout else ''}")
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, 30, f"node {script} on port {port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        from anyapp.sweeps import stop

        stop(process)
