"""Redaction: known secret values and secret-shaped text never survive."""

from __future__ import annotations

import pytest

from pytest_opscheck.redact import Redactor

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiIsImV4cCI6MX0.c2lnbmF0dXJlLWJ5dGVz"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://app:pa55word@db:5432/app", "postgresql://app:***@db:5432/app"),
        ("Authorization: Bearer abcdefgh12345678", "Authorization: Bearer ***"),
        (f"got {JWT} back", "got ***jwt*** back"),
        ('{"password": "hunter2", "user": "x"}', '{"password": "***", "user": "x"}'),
        ("PGPASSWORD=x1 password=topsecret host=db", "PGPASSWORD=*** password=*** host=db"),
        ("SECRET_KEY=abcdef JWT_SECRET: x", "SECRET_KEY=*** JWT_SECRET: x"),
        ("a wrong password: 500 Internal Server Error", "a wrong password: 500 Internal Server Error"),
        ("nothing to hide at http://example.test/path", "nothing to hide at http://example.test/path"),
    ],
)
def test_secret_shapes_are_masked(text: str, expected: str) -> None:
    assert Redactor()(text) == expected


def test_known_values_are_masked_longest_first() -> None:
    redact = Redactor(["PLANTED-value-1234", "PLANTED-value-1234-longer", "abc"])
    assert redact("a PLANTED-value-1234-longer b PLANTED-value-1234") == "a *** b ***"
    assert redact("abc stays: too short to replace blindly") == "abc stays: too short to replace blindly"


def test_data_redacts_nested_values() -> None:
    redact = Redactor(["PLANTED-nested-99"])
    assert redact.data({"a": ["x PLANTED-nested-99"], "b": 3}) == {"a": ["x ***"], "b": 3}


def test_clean_bounds_and_neutralises_target_text() -> None:
    from pytest_opscheck.report.clean import clean

    assert clean("a\x1b[2Jb\tc\nd", 100) == "a\\x1b[2Jb\tc\nd"
    assert clean("x" * 50, 10) == "x" * 10 + "\n[truncated: 40 more characters]"
