"""The configuration, fuzzed through the real loading path: every input loads or is a one-line error."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_opscheck.config import Auth, ConfigError, Settings, Smtp, Thresholds, load_settings

KEYS = [f.name for f in dataclasses.fields(Settings)] + ["env", "bogus", "thresholds", "auth", "smtp"]
SUB_KEYS = [f.name for cls in (Thresholds, Auth, Smtp) for f in dataclasses.fields(cls)] + ["tool", "x"]

scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=30),
    st.sampled_from(["${HOME}", "${UNSET_FUZZ_VAR}", "http://x", "postgresql://u:${PW}@h/db", "P1", "form"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(SUB_KEYS), inner, max_size=3),
    ),
    max_leaves=8,
)
tables = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def check_loads_or_one_line_error(path: Path) -> None:
    try:
        loaded = load_settings(path.parent, environ={"HOME": "/root", "PW": "pw-fuzz"})
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message
        assert message.startswith(str(path.parent)), message
        assert "pw-fuzz" not in message
    else:
        assert isinstance(loaded, Settings)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables)
def test_any_table_loads_or_fails_in_one_line(table: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "opscheck.toml"
        path.write_text("\n".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items()) + "\n")
        check_loads_or_one_line_error(path)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_load_or_fail_in_one_line(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "opscheck.toml"
        path.write_bytes(data)
        check_loads_or_one_line_error(path)


# The TOML's ${...} forms against the `.env` reader's, which follows Compose's template rules (and is tested
# against `docker compose config` itself): one grammar, two readers, the same answers.
NAMES = ("A", "B", "C")
literal = st.text(alphabet="ab/:@.-_ ", max_size=4)


@st.composite
def templates(draw: Any, depth: int = 2) -> str:
    parts = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        kind = draw(st.sampled_from(["text", "plain", "op"] if depth else ["text", "plain"]))
        name = draw(st.sampled_from(NAMES))
        if kind == "text":
            parts.append(draw(literal))
        elif kind == "plain":
            parts.append("${" + name + "}")
        else:
            op = draw(st.sampled_from([":-", "-", ":+", "+", ":?", "?"]))
            parts.append("${" + name + op + draw(templates(depth=depth - 1)) + "}")
    return "".join(parts)


environments = st.dictionaries(st.sampled_from(NAMES), st.sampled_from(["", "v", "x/y"]), max_size=3)


@given(templates(), environments)
@settings(max_examples=300, deadline=None)
def test_toml_references_read_as_the_env_file_reads_them(template: str, environ: dict[str, str]) -> None:
    from pytest_opscheck.config.env import EnvFileError
    from pytest_opscheck.config.env import expand as env_expand
    from pytest_opscheck.config.secrets import BadReference, Required, Unset, expand

    def lookup(name: str) -> str | None:
        return environ.get(name)

    try:
        ours: str | None = expand(template, environ)
    except Unset:
        ours = None  # a plain ${NAME} unset or empty: the key is left unconfigured (Compose would write "")
    except BadReference:
        return  # nested deeper than the TOML reads: refused with the key named (tested elsewhere)
    except Required:
        try:
            env_expand(template, lookup)
        except EnvFileError:
            return
        raise AssertionError(f"{template!r}: the .env reader accepts what the TOML refuses") from None
    try:
        theirs = env_expand(template, lookup)
    except EnvFileError:
        raise AssertionError(f"{template!r}: the .env reader refuses what the TOML accepts ({ours!r})") from None
    if ours is not None:
        assert ours == theirs, template
