"""Redaction: known secret values and secret-shaped text never survive."""

from __future__ import annotations

import base64
import html
import json
import threading
from urllib.parse import quote, quote_plus

import pytest

from pytest_opscheck.redact import FRAGMENT, MASK, Redactor

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
        ("302 → http://127.0.0.1:17003/x?token=tok_Opaque42&page=2", "302 → http://127.0.0.1:17003/x?token=***&page=2"),
        ("GET /s3?X-Amz-Signature=abc123&X-Amz-Credential=AKIA/x", "GET /s3?X-Amz-Signature=***&X-Amz-Credential=***"),
        ('{"authorization": "Basic dXNlcjpwdw=="}', '{"authorization": "Basic ***"}'),
        ("Proxy-Authorization: Digest abc", "Proxy-Authorization: Digest ***"),
        ("token tok_0123456789abcdefXYZ", "token ***"),
        ("{'SECRET_KEY': 'changethi...XHKoUfKv7DojpX8yxigTsX'}", "{'SECRET_KEY': '***'}"),
        # Words, not secrets: they stay.
        ('"POST /api/v1/login/access-token HTTP/1.1" 500', '"POST /api/v1/login/access-token HTTP/1.1" 500'),
        ("(token withheld)", "(token withheld)"),
        ("Basic authentication failed; Bearer token needed", "Basic authentication failed; Bearer token needed"),
        ('{"token_type": "bearer"}', '{"token_type": "bearer"}'),
        ("?sslmode=require&page=2", "?sslmode=require&page=2"),
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


SECRET = 'Zq9&planted<pw>"7731XYZ/+a'


@pytest.mark.parametrize(
    "echo",
    [
        SECRET,
        html.escape(SECRET),
        html.escape(SECRET, quote=False),
        SECRET.replace('"', "&#34;").replace("<", "&lt;").replace(">", "&gt;").replace("&p", "&amp;p"),
        json.dumps(SECRET)[1:-1],
        quote(SECRET, safe=""),
        quote_plus(SECRET),
        base64.b64encode(SECRET.encode()).decode(),
        base64.b64encode(f"smoke:{SECRET}".encode()).decode(),  # inside a Basic credential, at each alignment
        base64.b64encode(f"smok:{SECRET}".encode()).decode(),
        base64.b64encode(f"smo:{SECRET}".encode()).decode(),
        base64.urlsafe_b64encode(f"u:{SECRET}".encode()).decode(),
    ],
    ids=["raw", "html", "html-noquote", "html-numeric", "json", "url", "url-form", "base64", "basic-0", "basic-1",
         "basic-2", "base64url"],
)
def test_a_known_value_is_masked_in_every_form_it_comes_back_in(echo: str) -> None:
    out = Redactor([SECRET])(f"error page: <{echo}> end")
    assert out.startswith("error page: <") and out.endswith("> end")
    assert MASK in out
    for i in range(len(SECRET) - FRAGMENT + 1):
        assert SECRET[i : i + FRAGMENT] not in out


def test_any_fragment_of_a_known_value_is_masked_and_a_shorter_one_may_stay() -> None:
    key = "changethisXHKoUfKv7DojpX8yxigTsX"  # 32 characters: a truncated echo shows its head and its tail
    redact = Redactor([key])
    assert redact(f"input_value={{'cfg': '{key[:9]}...{key[-22:]}'}}") == "input_value={'cfg': '***...***'}"
    assert redact(f"x{key[5:5 + FRAGMENT]}y") == "x***y"
    assert redact(f"x{key[5:5 + FRAGMENT - 1]}y") == f"x{key[5:5 + FRAGMENT - 1]}y"
    # A cut head or tail of at least 8 characters is masked where it stands as a word, not inside another.
    assert redact(f"cut: {key[:8]}… and {key[:8]}zz") == f"cut: ***… and {key[:8]}zz"
    # A path or a URL a secret-looking name held is masked whole only: its fragments are ordinary text.
    path = "/run/secrets/db-password-file"
    assert Redactor([path])(f"{path} and /run/secrets/other") == "*** and /run/secrets/other"


def test_values_added_later_are_secrets_from_then_on_and_adding_is_thread_safe() -> None:
    redact = Redactor(["PLANTED-first-value-01"])
    tokens = [f"opq-{i:04d}-{'x' * 20}" for i in range(200)]
    threads = [threading.Thread(target=redact.add, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(token in redact for token in tokens)
    assert redact(" ".join(tokens[::50])) == " ".join([MASK] * 4)
    assert redact("PLANTED-first-value-01") == MASK
