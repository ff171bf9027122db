"""The README's demo command: it runs, exits as its fault implies, and its HTML report reads right in Chromium."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_hostile import chromium_dom

ROOT = Path(__file__).parents[1]


def demo(fault: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "demo" / "run.py"), "--fault", fault, "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )


def test_healthy_demo_passes(tmp_path: Path) -> None:
    run = demo("none", tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "mode: local processes on 127.0.0.1" in run.stdout
    assert "verdict: OK:" in run.stdout


@pytest.mark.parametrize(
    ("fault", "failing"),
    [
        ("broken-login", "auth.login"),
        ("db-down", "db.reachable"),
        ("missing-migration", "db.migrations_current"),
        ("ws-refused", "ws.handshake"),
        ("deeplinks-404", "frontend.spa_routes"),
        ("crash-loop", "backend.health"),
    ],
)
def test_each_fault_fails_its_check(fault: str, failing: str, tmp_path: Path) -> None:
    run = demo(fault, tmp_path)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-2000:]
    records = {r["check_id"]: r for r in json.loads((tmp_path / "opscheck.json").read_text())["checks"]}
    assert records[failing]["outcome"] == "failed"
    assert records[failing]["caused_by"] is None
    assert f"HTML report: {tmp_path / 'opscheck-report.html'}" in run.stdout
    if fault == "broken-login":
        dom = chromium_dom(tmp_path / "opscheck-report.html", tmp_path / "profile")
        assert 'id="opscheck-summary"' in dom and "P2 HIGH:" in dom
        assert 'class="opscheck-resolution"' in dom and "smoke account" in dom
