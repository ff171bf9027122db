"""Hostile targets: text an attacker chose stays text, and a stack changing under the sweep is a result."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

PAYLOADS = (
    '<script>document.body.setAttribute("data-pwned", "script")</script>',
    '<img src=x onerror="document.body.setAttribute(\'data-pwned\', \'img\')">',
)


def chromium_dom(html: Path, profile: Path) -> str:
    """The DOM of `html` after its scripts ran, from headless Chromium."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: apt-get install chromium")
        pytest.skip("REAL SERVICE MISSING: chromium (apt-get install chromium)")
    result = subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--virtual-time-budget=3000", "--dump-dom", html.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-1000:]
    return result.stdout


def test_evidence_from_a_target_runs_nothing_in_the_html_report(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makefile(".toml", opscheck='checks = ["ops"]\n')
    pytester.mkdir("ops")
    (pytester.path / "ops" / "test_attacker.py").write_text(
        textwrap.dedent(
            f"""
            import pytest
            from pytest_opscheck.verdict import fail

            @pytest.mark.severity("P1")
            @pytest.mark.resolution({PAYLOADS[1]!r})
            def test_log_line():
                fail({PAYLOADS[0]!r}, {{"log tail": {PAYLOADS[0] + PAYLOADS[1]!r}, {PAYLOADS[1]!r}: "x"}})
            """
        )
    )
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-k", "attacker.")
    result.assert_outcomes(failed=1)
    dom = chromium_dom(pytester.path / "opscheck-report.html", tmp_path / "profile")
    body_tag = re.search(r"<body[^>]*>", dom)
    assert body_tag is not None and "data-pwned" not in body_tag.group(0), "a script from the evidence ran"
    assert 'class="opscheck-resolution"' in dom and 'id="opscheck-summary"' in dom
    assert "&lt;script&gt;document.body.setAttribute" in dom
    assert "&lt;img src=x onerror=" in dom


def test_container_removed_mid_sweep_is_a_plain_result(
    pytester: pytest.Pytester, compose_stack: Any, docker_engine: Any
) -> None:
    name = f"opsgone{uuid.uuid4().hex[:6]}"
    compose_stack(
        f"""
name: {name}
services:
  backend:
    image: ${{BUSYBOX}}
    network_mode: none
    command: sleep 3600
  worker:
    image: ${{BUSYBOX}}
    network_mode: none
    command: sleep 3600
""",
        name,
    )
    pytester.makefile(".toml", opscheck=f'compose_project = "{name}"\n')
    pytester.syspathinsert()
    pytester.makepyfile(
        remover=f"""
        import docker

        def pytest_runtest_setup(item):
            # The stack changes under the sweep: after the first check, a container disappears.
            if item.name == "test_no_crash_loop":
                client = docker.from_env()
                client.containers.get("{name}-worker-1").remove(force=True)
                client.close()
        """
    )
    result = pytester.runpytest(
        "--opscheck", "-p", "no:cacheprovider", "-p", "remover", "-k", "stack.", "--opscheck-json", "out.json"
    )
    records = {r["check_id"]: r for r in json.loads((pytester.path / "out.json").read_text())["checks"]}
    assert "Traceback" not in result.stdout.str()
    assert "INTERNALERROR" not in result.stdout.str()
    assert records["stack.services_running"]["outcome"] == "passed"
    assert records["stack.no_crash_loop"]["outcome"] == "failed"
    assert records["stack.no_crash_loop"]["message"] == f"worker ({name}-worker-1) was removed during the sweep"
    assert records["stack.logs_clean"]["outcome"] == "passed"
