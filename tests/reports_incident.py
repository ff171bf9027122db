"""One incident sweep shared by the report tests (test_reports_*.py): a P1 root cause (the database refused)
with consequences (a P1 and a P2 failing because of it), a P2 whose fixture cannot reach its target, a P3 below
the gate, a pass, a gap; the built-in checks alongside, skipped as not configured. Run once per test module, as
a user runs it (a subprocess), with every report asked for."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

PLANTED = "PLANTED-incident-secret-7a3e"

CHECKS = '''
import pytest
from pytest_opscheck.verdict import fail


@pytest.mark.severity("P1")
@pytest.mark.resolution("docker compose restart db")
def test_db_down(opscheck_config):
    fail(
        "db: connection refused by 127.0.0.1:5432",
        {"log tail": "FATAL: <script>alert(1)</script> password " + opscheck_config.auth.password},
    )


@pytest.mark.severity("P1")
@pytest.mark.depends_on("incident.db_down")
def test_orders_api():
    fail("backend: GET /api/orders answered 500")


@pytest.mark.severity("P2")
@pytest.mark.depends_on("incident.db_down")
def test_login():
    fail("auth: login answered 500")


@pytest.fixture
def queue():
    fail("queue: connection refused by 127.0.0.1:5672")


@pytest.mark.severity("P2")
@pytest.mark.resolution("docker compose up -d queue")
def test_queue(queue):
    pass


@pytest.mark.severity("P3")
def test_slow_page():
    """Find the slow query: EXPLAIN ANALYZE SELECT ..."""
    assert 2.5 < 2.0, "too slow"


@pytest.mark.severity("P2")
def test_fine():
    pass


@pytest.mark.severity("P4")
def test_gap():
    pytest.skip("not configured: smtp.host")
'''

ROOTS = ["incident.db_down", "incident.queue", "incident.slow_page"]  # root causes, worst first
CONSEQUENCES = ["incident.orders_api", "incident.login"]  # caused by incident.db_down, worst first


@dataclass(frozen=True)
class Sweep:
    path: Path
    returncode: int
    stdout: str

    def read(self, name: str) -> str:
        return (self.path / name).read_text()


def run_sweep(path: Path, *extra: str) -> Sweep:
    """The incident sweep in `path`, with the JSON, JUnit, Prometheus and HTML reports."""
    (path / "opscheck.toml").write_text(
        textwrap.dedent(
            """
            checks = ["ops"]
            auth = { login_path = "/login", password = "${OPSCHECK_PASSWORD}" }
            """
        )
    )
    (path / "ops").mkdir(exist_ok=True)
    (path / "ops" / "test_incident.py").write_text(CHECKS)
    (path / "reports").mkdir(exist_ok=True)
    env = {**os.environ, "OPSCHECK_PASSWORD": PLANTED}
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "--opscheck", "-p", "no:cacheprovider", "--opscheck-fail-on", "P2",
            "--opscheck-json", "reports/opscheck.json", "--junitxml", "reports/junit.xml",
            "--opscheck-prometheus", "reports/opscheck.prom", "--html", "reports/report.html", *extra,
        ],
        cwd=path, env=env, capture_output=True, text=True, timeout=300,
    )
    return Sweep(path, result.returncode, result.stdout + result.stderr)
