"""The demo's own set-up on a fresh machine: PostgreSQL's server (Debian's packages, as root) and the Python
packages (this project with its `demo` extra), each installed only when missing, with the ordinary clients.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from demo.provision import ROOT, DemoError

MODULES = ("uvicorn", "starlette", "aiosmtpd", "alembic", "sqlalchemy", "psycopg", "websockets", "httpx",
           "pytest_html")
APT_PACKAGES = ("postgresql", "postgresql-contrib")


def missing_python() -> list[str]:
    """Modules the demo needs that do not import here, and the plugin when it is not installed."""
    missing = [name for name in MODULES if importlib.util.find_spec(name) is None]
    try:
        importlib.metadata.distribution("pytest-opscheck")
    except importlib.metadata.PackageNotFoundError:
        missing.append("pytest-opscheck")
    return missing


def postgres_installed() -> bool:
    return any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))


def ensure_installed() -> None:
    """Install what is missing; a DemoError saying what to do when it cannot."""
    if not postgres_installed():
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise DemoError("PostgreSQL's server is not installed: apt-get install postgresql postgresql-contrib "
                            "(as root)")
        print(f"set-up: installing {' '.join(APT_PACKAGES)} (apt-get) …", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-qq"],
                        ["apt-get", "install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=300", *APT_PACKAGES]):
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
            if result.returncode != 0:
                raise DemoError(f"{' '.join(command[:2])} failed: {result.stderr.strip()[-800:]}")
    missing = missing_python()
    if missing:
        print(f"set-up: installing this project with its demo extra (missing: {', '.join(missing)}) …", flush=True)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", f"{ROOT}[demo]"],
            capture_output=True, text=True, timeout=1200,
        )
        if result.returncode != 0:
            raise DemoError(f"pip install -e '.[demo]' failed: {result.stderr.strip()[-800:]}")
        importlib.invalidate_caches()
        still = missing_python()
        if still:
            raise DemoError(f"still missing after pip install: {', '.join(still)}")
