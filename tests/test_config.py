"""Config loading as a plain function: merging, interpolation, secrets, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_opscheck.config import ConfigError, Settings, load_settings, settings_from_table


def write(tmp_path: Path, text: str, name: str = "opscheck.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_and_missing_keys(tmp_path: Path) -> None:
    settings = settings_from_table({}, tmp_path / "opscheck.toml", environ={})
    assert settings == Settings(source=str(tmp_path / "opscheck.toml"), base_dir=str(tmp_path))
    assert settings.missing("database_url") == "not configured: database_url"
    assert settings.missing("auth.login_path") == "not configured: auth.login_path"
    assert settings.thresholds.cert_days == 14


def test_secrets_are_collected_for_redaction(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=from-dotenv-pw\nDOMAIN=example.test\n")
    settings = settings_from_table(
        {
            "database_url": "postgresql://app:${POSTGRES_PASSWORD}@localhost/app",
            "auth": {"login_path": "/login", "password": "${SMOKE_PW}"},
        },
        tmp_path / "opscheck.toml",
        environ={"SMOKE_PW": "smoke-pw-42"},
    )
    assert settings.database_url == "postgresql://app:from-dotenv-pw@localhost/app"
    assert "from-dotenv-pw" in settings.secrets and "smoke-pw-42" in settings.secrets
    assert "example.test" not in settings.secrets


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("API=from-file\n")
    settings = settings_from_table(
        {"backend_url": "http://${API}"}, tmp_path / "opscheck.toml", environ={"API": "from-env"}
    )
    assert settings.backend_url == "http://from-env"


def test_pyproject_is_preferred_to_opscheck_toml(tmp_path: Path) -> None:
    write(tmp_path, '[tool.opscheck]\nslow_seconds = 3.0\n', "pyproject.toml")
    write(tmp_path, "slow_seconds = 9.0\n")
    assert load_settings(tmp_path, environ={}).slow_seconds == 3.0


def test_pyproject_without_table_falls_back(tmp_path: Path) -> None:
    write(tmp_path, '[tool.other]\nx = 1\n', "pyproject.toml")
    write(tmp_path, "slow_seconds = 9.0\n")
    assert load_settings(tmp_path, environ={}).slow_seconds == 9.0


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"required_env": {"backend": "SECRET_KEY"}}, "required_env.backend: expected a list of strings, got a string"),
        ({"frontend_routes": ["/", 3]}, "frontend_routes: expected a list of strings, got an item that is an integer"),
        ({"thresholds": {"cert_days": 1.5}}, "thresholds.cert_days: expected an integer, got a number"),
        ({"thresholds": {"nope": 1}}, "thresholds.nope: unknown key"),
        ({"migrations": "alembic"}, "migrations: expected a table, got a string"),
        ({"slow_seconds": -1}, "slow_seconds: expected a value of 0 or more, got -1"),
        ({"env": []}, "env: expected a table of named environments, got a list"),
        ({"env_file": "missing.env"}, "env_file: "),
        ({"smtp": {"password": "plain"}}, "smtp.password: secrets come from the environment"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_table(table, tmp_path / "opscheck.toml", environ={})
    text = str(info.value)
    assert text.startswith(f"{tmp_path / 'opscheck.toml'}: ")
    assert message in text
    assert "\n" not in text


def test_config_reference_lists_every_key() -> None:
    import dataclasses
    import re

    readme = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()
    block = readme.split("<!-- config-reference:start -->")[1].split("<!-- config-reference:end -->")[0]
    documented = set(re.findall(r"^\| `(\w+)` \|", block, re.MULTILINE))
    loader_only = {"source", "env_name", "base_dir", "unresolved", "secrets"}
    assert documented == {f.name for f in dataclasses.fields(Settings)} - loader_only


def test_catalogue_lists_every_built_in_check_with_its_severity() -> None:
    import ast
    import re

    root = Path(__file__).parents[1]
    built_in = {}
    for path in sorted((root / "checks").glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                marks = [d for d in node.decorator_list if isinstance(d, ast.Call)]
                severity = next(m.args[0].value for m in marks if getattr(m.func, "attr", "") == "severity")
                built_in[f"{path.stem.removeprefix('test_')}.{node.name.removeprefix('test_')}"] = severity
    readme = (root / "docs" / "catalogue.md").read_text()
    block = readme.split("<!-- catalogue:start -->")[1].split("<!-- catalogue:end -->")[0]
    documented = dict(re.findall(r"^\| `([\w.]+)` \| (P[1-4]) \|", block, re.MULTILINE))
    assert documented == built_in
