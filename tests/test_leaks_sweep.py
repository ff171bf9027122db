"""The held-out-style attack, for real: one sweep against a hostile uvicorn backend (tests/leak_attack.py) that
plants a class of secrets through every channel (login answer fields under any name, a cookie of any name, a
401 and a 500 echoing them in every encoding, wrapped and cut, response headers, httpx/httpcore/websockets log
records, a check parametrised by a secret, pytest-metadata's environment and --metadata, captured stdout, an
assertion message), and every output the product writes read back: the terminal under -v -rA with log_cli,
the HTML, JSON, JUnit, Prometheus, post-mortem and --log-file. A .env whose value holds a broken `${` is
refused without its value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from leak_attack import Planted, app, env_error, leak_table, sweep
from leakcheck import Outputs
from servers import serving

OUTPUTS = ("stdout", "out.json", "opscheck-report.html", "junit.xml", "postmortem.md", "opscheck.prom", "opscheck.log")


@pytest.fixture(scope="module")
def attack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Planted, Any, Outputs]:
    planted = Planted()
    with serving(app(planted)) as server:
        result, outputs = sweep(tmp_path_factory.mktemp("attack"), planted, server.url)
    return planted, result, outputs


@pytest.fixture(scope="module")
def leaked(attack: tuple[Planted, Any, Outputs]) -> dict[str, list[str]]:
    """Each planted secret's leaks, every output read once in every view."""
    planted, _, outputs = attack
    return leak_table(planted, outputs)


@pytest.mark.parametrize("name", list(Planted().values()))
def test_no_planted_secret_in_any_output(leaked: dict[str, list[str]], name: str) -> None:
    assert not leaked[name], f"{name} leaked:\n" + "\n".join(leaked[name])


def test_the_attack_reached_every_sink(attack: tuple[Planted, Any, Outputs]) -> None:
    """The secrets went where they could leak: the checks ran, logged, failed, and every output was written."""
    _, result, outputs = attack
    missing = [name for name in OUTPUTS if name not in outputs.texts]
    assert not missing, f"not written: {missing}\n{result.stderr[-2000:]}"
    stdout, log = outputs.texts["stdout"], outputs.texts["opscheck.log"]
    assert "live log call" in stdout and "HTTP Request: POST" in stdout, "log_cli showed no httpx records"
    assert "receive_response_headers.complete" in log and "error page: <html>" in log
    # The captured stdout and log sections (-rA's, which the product's terminal keeps quiet) are in the HTML.
    assert "Captured stdout call" in outputs.texts["opscheck-report.html"], "no captured sections"
    assert "'DEPLOY_TOKEN': '***'" in stdout and "github.com/acme/app.git" in stdout, "no metadata header"
    assert "token_is_current[***0]" in stdout and "token_is_current[***1]" in stdout
    records = {r["id"]: r for r in json.loads(outputs.texts["out.json"])["checks"]}
    assert records["auth.login"]["outcome"] == "passed"
    assert records["backend.health"]["outcome"] == "failed"
    assert "belongs to another device" in records["auth.token_accepted"]["message"]
    assert {"team_tokens.token_is_current[***0]", "team_tokens.token_is_current[***1]"} <= set(records)
    assert records["team_tokens.caplog_holds_no_token"]["outcome"] == "passed", "caplog held a secret"
    assert 'token_is_current[***0]' in outputs.texts["junit.xml"]
    assert 'token_is_current[***0]' in outputs.texts["opscheck.prom"]
    # Redaction replaces secrets, not words.
    assert "<h1>Internal Server Error</h1>" in log
    outputs.assert_present("belongs to another device", "out.json", "opscheck-report.html", "postmortem.md")


def test_a_broken_template_in_env_is_a_usage_error_without_the_value(tmp_path: Path) -> None:
    planted = Planted()
    result = env_error(tmp_path, planted)
    assert result.returncode == 4
    assert "DB_PASSWORD: invalid template" in result.stderr
    found = leak_table(planted, Outputs({"stdout": result.stdout, "stderr": result.stderr}))
    assert not any(found.values()), found
