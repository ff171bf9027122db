"""Report options behave the same on every run and in both forms (issue 26, item 1): the README's systemd unit,
run as written, twice (its report files exist from the second run on); `--opt PATH` and `--opt=PATH` alike. The
cause was pytest's first look at the command line, before plugins add their options: a report path written as
a word of its own is a free argument there, and once the file exists it moves pytest's rootdir (and so where
the config was looked for) to the common folder of that file and the working folder."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_opscheck.report.paths import LATE_PATH_OPTIONS, taken_for_paths

ROOT = Path(__file__).parents[1]


def readme_unit() -> str:
    """The ExecStart of the README's systemd service, its continuation lines joined."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"# /etc/systemd/system/opscheck\.service\n(.*?)\n# /etc/systemd/system/opscheck\.timer",
                      text, re.DOTALL)
    assert block is not None, "the README's systemd unit"
    unit = block.group(1).replace("\\\n", " ")
    line = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    return line.removeprefix("ExecStart=")


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the plugin of this checkout, wherever the command runs
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def server_layout(tmp_path: Path) -> tuple[Path, Path]:
    """/srv/app with its config, and /var/lib for the reports, both under `tmp_path` (a folder that has no
    pytest config above it, as / has not)."""
    app = tmp_path / "srv" / "app"
    app.mkdir(parents=True)
    # A backend that refuses: the sweep has a verdict (exit 1, a result the unit accepts) in well under a second.
    (app / "pyproject.toml").write_text('[project]\nname = "app"\n\n[tool.opscheck]\nbackend_url = "http://127.0.0.1:9"\n')
    var = tmp_path / "var" / "lib"
    (var / "opscheck").mkdir(parents=True)
    (var / "node_exporter" / "textfile_collector").mkdir(parents=True)
    return app, var


def sweep_twice(command: str, app: Path, var: Path) -> list[subprocess.CompletedProcess[str]]:
    words = shlex.split(command.replace("/var/lib", str(var)).replace("/srv/app", str(app)))
    assert words[0] == f"{app}/.venv/bin/pytest"
    words[:1] = [sys.executable, "-m", "pytest"]
    prom = var / "node_exporter" / "textfile_collector" / "opscheck.prom"
    runs, stamps = [], []
    for _ in range(2):
        runs.append(run(words, app))
        assert prom.exists(), runs[-1].stdout[-3000:] + runs[-1].stderr[-3000:]
        text = prom.read_text()
        assert 'opscheck_check_up{id="backend.health",severity="P1"} 0' in text
        stamps.append(re.search(r"^opscheck_last_sweep_timestamp_seconds (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
    assert stamps[0] != stamps[1], "the second sweep wrote its own metrics"
    assert (var / "opscheck" / "report.html").stat().st_size > 1000
    return runs


def test_the_readme_systemd_unit_sweeps_on_every_run(server_layout: tuple[Path, Path]) -> None:
    app, var = server_layout
    command = readme_unit()
    assert " --html " in command or " --html=" in command
    first, second = sweep_twice(command, app, var)
    for result in (first, second):
        assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
        assert "no configuration found" not in result.stdout + result.stderr
        assert re.search(r"^P1 CRITICAL: .*fix first: backend\.health", result.stdout, re.M)
    assert "for a test path" not in first.stdout + second.stdout, "the = form never moves pytest's rootdir"


def test_the_space_form_sweeps_on_every_run_too(server_layout: tuple[Path, Path]) -> None:
    """The issue's unit as it was (`--html PATH`, every report option a word of its own): from the second run on
    its files exist, pytest's rootdir moves, and the sweep still finds its config and says so, once."""
    app, var = server_layout
    options = {"--html": "opscheck/report.html", "--opscheck-json": "opscheck/opscheck.json",
               "--opscheck-prometheus": "node_exporter/textfile_collector/opscheck.prom",
               "--opscheck-postmortem": "opscheck/postmortem.md"}
    words = ["/srv/app/.venv/bin/pytest", "--opscheck", "-q", "-p", "no:cacheprovider"]
    for flag, path in options.items():
        words += [flag, f"/var/lib/{path}"]
    first, second = sweep_twice(shlex.join(words), app, var)
    assert first.returncode == second.returncode == 1, second.stdout[-3000:] + second.stderr[-2000:]
    assert (var / "opscheck" / "opscheck.json").read_text().startswith("{")
    assert "backend.health" in (var / "opscheck" / "postmortem.md").read_text()
    assert "for a test path" not in first.stdout, "the first run: no file existed yet"
    note = " ".join(second.stdout[second.stdout.index("note: pytest took"):].split("\nP1 CRITICAL FAILED")[0].split())
    assert "write --html=" in note and second.stdout.count("note: pytest took") == 1, note


def test_a_report_path_is_taken_for_a_test_path_only_as_a_word_of_its_own_that_exists(tmp_path: Path) -> None:
    (tmp_path / "exists.html").write_text("")
    (tmp_path / "prod").mkdir()
    for flag in LATE_PATH_OPTIONS:
        assert taken_for_paths([flag, "exists.html"], tmp_path) == [(flag, "exists.html")]
        absolute = str(tmp_path / "exists.html")
        assert taken_for_paths([flag, absolute], tmp_path) == [(flag, absolute)]
        assert taken_for_paths([f"{flag}=exists.html"], tmp_path) == []
        assert taken_for_paths([flag, "missing.html"], tmp_path) == []
    assert taken_for_paths(["--junitxml", "exists.html"], tmp_path) == [], "pytest knows its own options early"
    assert taken_for_paths(["-k", "exists.html"], tmp_path) == []


def test_without_any_config_the_error_says_why_pytest_looked_elsewhere(server_layout: tuple[Path, Path]) -> None:
    app, var = server_layout
    (app / "pyproject.toml").write_text('[project]\nname = "app"\n')
    (var / "opscheck" / "report.html").write_text("")
    result = run([sys.executable, "-m", "pytest", "--opscheck", "-p", "no:cacheprovider", "--html",
                  str(var / "opscheck" / "report.html")], app)
    assert result.returncode == 4
    assert f"no configuration found in {app} or above" in result.stderr
    assert f"write --html={var / 'opscheck' / 'report.html'}" in result.stderr


def test_a_config_file_elsewhere_is_used_and_the_moved_rootdir_said(server_layout: tuple[Path, Path]) -> None:
    app, var = server_layout
    config = var / "opscheck" / "prod.toml"  # /etc/opscheck/prod.toml, say: it exists on every run
    config.write_text('backend_url = "http://127.0.0.1:9"\n')
    (app / "pyproject.toml").write_text('[project]\nname = "app"\n')
    result = run([sys.executable, "-m", "pytest", "--opscheck", "-q", "-p", "no:cacheprovider", "-k", "health",
                  "--opscheck-config", str(config)], app)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    note = " ".join(result.stdout[result.stdout.index("note: pytest took"):].split("\nP1 CRITICAL")[0].split())
    assert "the --opscheck-config file for a test path" in note and f"write --opscheck-config={config}" in note
    inside = run([sys.executable, "-m", "pytest", "--opscheck", "-q", "-p", "no:cacheprovider", "-k", "health",
                  "--opscheck-config", "pyproject.toml"], app)
    assert "for a test path" not in inside.stdout + inside.stderr, "a path under the working folder moves nothing"
