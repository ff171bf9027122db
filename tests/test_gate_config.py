"""The gate says what it did not check, and the config behaves as its user expects (issue 26, items 4 and 8):
``${VAR:-default}`` and ``${VAR:?message}`` in the TOML as Compose reads them (Compose itself is the reference),
the README's ``[tool.opscheck]`` snippet accepted in a file given to --opscheck-config, and an unset variable
a usage error under --opscheck-strict, counted in the verdict line without it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from conftest import unavailable

from pytest_opscheck.config.secrets import Required, Unset, expand
from pytest_opscheck.config.settings import ConfigError, load_settings

# Templates of every form Compose reads, against environments where the variable is set, empty and unset.
TEMPLATES = [
    "${A}", "x${A}y", "${A:-dflt}", "${A-dflt}", "${A:+alt}", "${A+alt}", "${A:-${B}}", "${A:-${B:-deep}}",
    "http://${A:-localhost}:${PORT:-8000}/p", "${A:?say why}", "${A?say why}", "${B}${A:-}", "pre-${A:+on}-post",
]
ENVIRONMENTS = [{"A": "val", "B": "bee"}, {"A": "", "B": "bee"}, {"B": "bee"}, {}]


def compose_config(tmp_path: Path, templates: list[str], environ: dict[str, str]) -> dict[str, str] | str:
    """What `docker compose config` makes of each template (as an environment value), or its refusal."""
    lines = ["services:", "  app:", "    image: busybox", "    environment:"]
    lines += [f"      T{i}: {json.dumps(t)}" for i, t in enumerate(templates)]
    (tmp_path / "compose.yaml").write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("A", "B", "PORT")} | environ
    done = subprocess.run(["docker", "compose", "config", "--format", "json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    if done.returncode:
        return done.stderr
    values = json.loads(done.stdout)["services"]["app"]["environment"]
    return {t: values[f"T{i}"] or "" for i, t in enumerate(templates)}


def blank(template: str, environ: dict[str, str]) -> str:
    """`template` with each plain ``${NAME}`` whose variable is unset or empty written as nothing, which is what
    Compose puts there (ours leaves such a key unconfigured instead)."""
    for name in ("A", "B", "PORT"):
        if not environ.get(name):
            template = template.replace("${" + name + "}", "")
    return template


@pytest.mark.parametrize("environ", ENVIRONMENTS, ids=["set", "empty", "unset", "none"])
def test_toml_references_expand_as_compose_expands_them(tmp_path: Path, environ: dict[str, str]) -> None:
    if shutil.which("docker") is None:
        unavailable("the docker CLI with its compose plugin")
    required = [t for t in TEMPLATES if "?" in t]
    plain = [t for t in TEMPLATES if t not in required]
    theirs = compose_config(tmp_path, plain, environ)
    assert isinstance(theirs, dict), theirs
    for template in plain:
        try:
            ours = expand(template, environ)
        except Unset:  # a plain ${A} unset or empty leaves the key unconfigured; Compose makes it ""
            assert theirs[template] == expand(blank(template, environ), environ), template
            continue
        assert ours == theirs[template], template
    for template in required:
        refused = compose_config(tmp_path, [template], environ)
        try:
            ours = expand(template, environ)
        except Required as exc:
            assert isinstance(refused, str) and "say why" in refused and "say why" in str(exc), template
            continue
        assert refused == {template: ours}, template


def write(folder: Path, text: str, name: str = "pyproject.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"${BACKEND:x}"', "backend_url: '${BACKEND:x}' is not a reference: write ${NAME}, ${NAME:-default}"),
        ('"${BACKEND:?set BACKEND to the app URL}"', "backend_url: required variable BACKEND is not set: set BACKEND"),
        ('"${BACKEND?}"', "backend_url: required variable BACKEND is not set"),
        ('"${BACKEND:-ftp://x}"', "backend_url: expected a http:// URL with a host, got ftp://"),
    ],
)
def test_reference_errors_say_what_is_wrong(tmp_path: Path, value: str, expected: str) -> None:
    write(tmp_path, f"[tool.opscheck]\nbackend_url = {value}\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(tmp_path, environ={})
    assert expected in str(refused.value)
    assert "no scheme" not in str(refused.value)


def test_defaults_fill_the_config_and_a_literal_default_is_no_way_around_the_secret_rule(tmp_path: Path) -> None:
    write(tmp_path, """
        [tool.opscheck]
        backend_url = "http://${HOST:-127.0.0.1}:${PORT:-8000}"
        database_url = "postgresql://app:${PGPASSWORD:?the app's password}@${PGHOST:-localhost}/app"
        auth = { login_path = "/login", username = "${OPSCHECK_USER:-smoke}", password = "${OPSCHECK_PASSWORD}" }
    """)
    settings = load_settings(tmp_path, environ={"PGPASSWORD": "pw-9d1e/x", "OPSCHECK_PASSWORD": "s3cret-77ab"})
    assert settings.backend_url == "http://127.0.0.1:8000"
    assert settings.database_url == "postgresql://app:pw-9d1e%2Fx@localhost/app"
    assert settings.auth is not None and settings.auth.username == "smoke"
    assert {"pw-9d1e/x", "s3cret-77ab"} <= set(settings.secrets)
    for literal in ('password = "${OPSCHECK_PASSWORD:-hunter2}"', 'password = "hunter2"'):
        write(tmp_path, f'[tool.opscheck]\nauth = {{ login_path = "/login", {literal} }}\n')
        with pytest.raises(ConfigError, match="secrets come from the environment"):
            load_settings(tmp_path, environ={})
    write(tmp_path, '[tool.opscheck]\nauth = { login_path = "/l", password = "${PW:?ask the on-call lead}" }\n')
    assert load_settings(tmp_path, environ={"PW": "x-1"}).auth.password == "x-1"  # type: ignore[union-attr]


def test_unset_names_the_variable_behind_each_unconfigured_key(tmp_path: Path) -> None:
    write(tmp_path, """
        [tool.opscheck]
        database_url = "${DB_URL}"
        backend_url = "http://localhost:${PORT}"
        frontend_url = "${FRONT:-http://localhost:5173}"
        smtp = { host = "${SMTP_HOST}", port = 587 }
    """)
    settings = load_settings(tmp_path, environ={"PORT": ""})
    assert settings.database_url is None and settings.backend_url is None
    assert [settings.unset(k) for k in ("database_url", "backend_url", "frontend_url", "smtp", "smtp.host")] == [
        "DB_URL", "PORT", None, "SMTP_HOST", "SMTP_HOST"]
    with pytest.raises(ConfigError) as refused:
        load_settings(tmp_path, environ={"PORT": ""}, strict=True)
    assert "backend_url: ${PORT} is not set (--opscheck-strict" in str(refused.value)


@pytest.mark.parametrize("name", ["opscheck.toml", "ops.toml", "pyproject.toml"])
def test_the_tool_opscheck_snippet_is_accepted_in_a_file_given_to_config(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, """
        [project]
        name = "app"

        [tool.opscheck]
        backend_url = "http://localhost:8000"

        [tool.opscheck.env.prod]
        backend_url = "https://app.example.com"
    """, name)
    assert load_settings(tmp_path, str(path), environ={}).backend_url == "http://localhost:8000"
    assert load_settings(tmp_path, str(path), "prod", environ={}).backend_url == "https://app.example.com"
    write(tmp_path, 'backend_url = "http://b:2"\n[tool.opscheck]\nbackend_url = "http://a:1"\n', "both.toml")
    with pytest.raises(ConfigError, match=r"both \[tool.opscheck\] and top-level keys \(backend_url\)"):
        load_settings(tmp_path, str(tmp_path / "both.toml"), environ={})


UNSET_CONFIG = """
[tool.opscheck]
database_url = "${DB_URL_26}"
checks = ["ops"]
"""
PASSING = """
import pytest

@pytest.mark.severity("P2")
def test_fine():
    pass
"""


def test_an_unset_variable_never_passes_the_gate_silently(pytester: pytest.Pytester,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DB_URL_26", raising=False)
    pytester.makepyprojecttoml(UNSET_CONFIG)
    pytester.mkdir("ops").joinpath("test_ops.py").write_text(PASSING)
    strict = pytester.runpytest("--opscheck", "--opscheck-strict", "-p", "no:cacheprovider")
    assert strict.ret == pytest.ExitCode.USAGE_ERROR
    strict.stderr.fnmatch_lines(["*pyproject.toml: database_url: ${DB_URL_26} is not set (--opscheck-strict*"])
    lenient = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-rs", "-k", "fine or db.")
    verdict = [line for line in lenient.outlines if line.startswith("OK:")]
    assert len(verdict) == 1 and verdict[0].endswith("not run: variable unset"), lenient.stdout.str()[-2000:]
    lenient.stdout.fnmatch_lines(["*not configured: database_url (${DB_URL_26} is *"])
    monkeypatch.setenv("DB_URL_26", "postgresql://u@127.0.0.1:1/db")
    assert "DB_URL_26" not in pytester.runpytest("--opscheck", "--opscheck-strict", "-p", "no:cacheprovider",
                                                 "-k", "fine").stdout.str()


@pytest.mark.parametrize(("table", "kept"), [
    ('auth = { style = "static" }', 'e.g. token = "${API_TOKEN}"'),
    ('auth = { style = "static", token = "${TOK}", scheme = "x ${TOK}" }', 'got "x ***"'),
    ('backend_url = "http://127.0.0.1:1/?token=${TOK}"\n'
     'auth = { style = "static", token = "${TOK}", scheme = "y ${TOK}" }', 'got "y ***"'),
])
def test_a_refusal_keeps_its_own_examples_and_masks_what_the_environment_filled_in(
        tmp_path: Path, table: str, kept: str) -> None:
    url = "" if table.startswith("backend_url") else 'backend_url = "http://127.0.0.1:1"\n'
    write(tmp_path, f"[tool.opscheck]\n{url}{table}\n")
    secret = "tok-Secret/12'34:56@x"
    with pytest.raises(ConfigError) as refused:
        load_settings(tmp_path, environ={"TOK": secret})
    message = str(refused.value)
    assert kept in message, message
    assert "tok-Secret" not in message and "12'34" not in message
