"""The redactor against the whole class: every secret kind × every encoding of `ENCODINGS` × whole, wrapped over
two lines and cut × every context a target puts it in (JSON, HTML, a log line, a header), read back by
leakcheck's independent decodings; ordinary text with those secrets known stays as it was; JWTs go whole;
secret-shaped keys, cookies and URLs by their shape; login answers, container variables and SQL text."""

from __future__ import annotations

import base64
import json
import logging
import secrets
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leak_attack import jwt
from leakcheck import found_in, views

from pytest_opscheck.redact import ENCODINGS, MASK, Redactor, secret_key

# One secret of each kind the rule tells apart (see pytest_opscheck.redact).
KINDS = {
    "long, markup characters": lambda: f"Zq9&pl<{secrets.token_hex(5)}>\"7'/+ä{secrets.token_hex(2)}",
    "opaque token": lambda: f"tok_{secrets.token_urlsafe(24)}",
    "hex key": lambda: secrets.token_hex(16),
    "with a space": lambda: f"correct horse {secrets.token_hex(4)} staple",
    "9 characters": lambda: f"k{secrets.token_hex(4)}",
    "digits only, 6": lambda: str(secrets.randbelow(900000) + 100000),
    "short, 5": lambda: f"Q{secrets.token_hex(2)}",
    "tiny, 2": lambda: secrets.choice(["x9", "Zq", "7!"]),
}
CONTEXTS = {
    "JSON body": lambda s: json.dumps({"detail": "refused", "echo": s, "n": 1})[:-1] + "}",
    "HTML page": lambda s: f"<html><body><p>Error for</p><pre>{s}</pre><p>retry later</p></body></html>",
    "log line": lambda s: f"2026-12-06 22:00:01 ERROR worker failed with {s} (attempt 3)",
    "header": lambda s: f"x-upstream-echo: {s}\r\ncontent-type: text/plain",
}
# A tiny secret is masked only as a whole value: planted where it is one, in the text encodings.
TINY_CONTEXTS = {
    "key=value": lambda s: f"user=smoke pin={s} retries=3",
    "JSON value": lambda s: f'{{"code": "{s}", "n": 1}}',
    "HTML cell": lambda s: f"<td>{s}</td>",
}
TEXT_ENCODINGS = [n for n in ENCODINGS if not n.startswith(("hex", "HEX", "base64"))]


def transforms(secret: str, form: str) -> dict[str, str]:
    """The form whole, wrapped over two lines (a secret long enough to be told from text), cut (a long one)."""
    out = {"whole": form}
    if len(secret) >= 8:
        half = len(form) // 2
        out["wrapped"] = f"{form[:half]}\n    {form[half:]}"
        out["wrapped (CRLF)"] = f"{form[:half]}\r\n{form[half:]}"
    if len(secret) >= 16 and form == secret:
        out["cut head"] = f"{secret[:10]}…"
        out["cut tail"] = f"…{secret[-13:]}"
        out["middle"] = secret[2:15]
    return out


def leaks_of(secret: str, text: str) -> str | None:
    for view in views(text):
        where = found_in(secret, view)
        if where is not None:
            return where
    return None


@pytest.mark.parametrize("kind", KINDS)
def test_every_encoding_of_every_secret_kind_is_masked_in_every_context(kind: str) -> None:
    found = []
    for _ in range(1):  # a fresh secret of the kind each run
        secret = KINDS[kind]()
        redact = Redactor([secret])
        tiny = len(secret) < 4
        encodings = TEXT_ENCODINGS if tiny else list(ENCODINGS)
        contexts = TINY_CONTEXTS if tiny else CONTEXTS
        for encoding in encodings:
            form = ENCODINGS[encoding](secret)
            for how, planted in transforms(secret, form).items():
                for where, context in contexts.items():
                    text = context(planted)
                    out = redact(text)
                    leak = leaks_of(secret, out)
                    if leak is not None:
                        found.append(f"{encoding}, {how}, in a {where}: …{leak}…")
                    elif MASK not in out:
                        found.append(f"{encoding}, {how}, in a {where}: nothing masked in {out!r}")
    assert not found, f"{len(found)} leaks of a {kind} secret:\n" + "\n".join(found[:20])


ORDINARY = [
    '"POST /api/v1/login/access-token HTTP/1.1" 500',
    "GET /api/v1/items/?skip=0&limit=100 took 1234 ms (slow_seconds 2.0)",
    "connection to server at \"db\" (172.18.0.3), port 5432 failed: Connection refused",
    "Restart the backend: docker compose restart backend; then docker compose logs --tail 100 backend",
    "health /health answers 503 Service Unavailable: {\"status\": \"degraded\", \"db\": \"down\"}",
    "the token never expires: a leaked token stays valid forever",
    "auth.rejects_bad_password: the login answers 401 to a wrong password (token withheld)",
    "1 of 3 API path(s) fail: /api/items → 500 (logged in), 2 passed in 0.41 s",
    "container app-backend-1 restarted 4 times in 10 minutes (exit code 137, OOMKilled true)",
    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' -- 12 rows",
    '{"token_type": "bearer", "expires_in": 3600}',
    "Basic authentication failed; Bearer token needed",
    "frontend.spa_routes: /settings answers 404 (the SPA's fallback is not configured)",
    "auth: SECURITY: GET https://127.0.0.1:8443/me redirects (307) down to plain http: not followed",
    "token: opaque token (44 characters), lifetime unknown",
]


def test_ordinary_text_stays_with_the_whole_class_known() -> None:
    known = [KINDS[k]() for k in KINDS if k != "tiny, 2"] + ["Zq"]
    redact = Redactor(known)
    changed = {line: redact(line) for line in ORDINARY if redact(line) != line}
    assert not changed, changed


def test_the_resolutions_of_the_catalogue_stay_with_the_whole_class_known() -> None:
    import importlib

    redact = Redactor([KINDS[k]() for k in KINDS])
    for module in ("backend", "frontend", "api", "auth", "ws", "email", "tls", "db", "stack"):
        checks = importlib.import_module(f"pytest_opscheck.checks.test_{module}")
        for name, function in vars(checks).items():
            for mark in getattr(function, "pytestmark", []) if name.startswith("test_") else []:
                if mark.name == "resolution":
                    assert redact(mark.args[0]) == mark.args[0], (module, name)


@pytest.mark.parametrize("header", ['{"alg":"HS256","typ":"JWT"}', '{ "alg": "HS512" }',
                                    '{"typ":"at+jwt","alg":"HS256"}'])
def test_a_jwt_is_masked_whole_whatever_it_carries_or_is_signed_with(header: str) -> None:
    key, password = f"k-{secrets.token_hex(12)}", f"pw-{secrets.token_hex(8)}"
    token = jwt({"sub": "smoke", "pw": password}, key)
    head = base64.urlsafe_b64encode(header.encode()).decode().rstrip("=")
    token = f"{head}.{token.split('.', 1)[1]}"
    redact = Redactor([key, password])
    for text in (f"session token {token}", f'{{"access_token": "{token}"}}', f"Authorization: Bearer {token}",
                 f"?jwt={token}&x=1", f"token={token}; Path=/"):
        out = redact(text)
        for part in token.split("."):
            assert part[:8] not in out, (text, out)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('{"sessionKey": "S3cr3tSess10nValue"}', "S3cr3tSess10nValue"),
        ("X-Api-Key: k3y-abcdef123456", "k3y-abcdef123456"),
        ("Set-Cookie: whatever_name=c00kieValue99; Path=/; HttpOnly", "c00kieValue99"),
        ("Cookie: a=first1111; b=second2222", "second2222"),
        ("[(b'set-cookie', b'sid=tupleC00kie; Path=/'), (b'authorization', b'Bearer tupleBearer42')]", "tupleC00kie"),
        ("[(b'authorization', b'Bearer tupleBearer42')]", "tupleBearer42"),
        ("GET /x?X-Amz-Signature=sig0123abcd&page=2", "sig0123abcd"),
        ("https://ghp_0123456789abcdefABCD@github.com/acme/app.git", "ghp_0123456789abcdefABCD"),
        ("https://x-access-token:ghs_0123456789abcd@github.com/acme/app.git", "ghs_0123456789abcd"),
        ("DJANGO_SECRET_KEY=dj4ng0-s3cret", "dj4ng0-s3cret"),
        ("{'csrfToken': 'csrf0123456789'}", "csrf0123456789"),
        ('"client_secret": 1234567', "1234567"),
    ],
)
def test_values_under_secret_shaped_names_are_masked_unlearned(text: str, secret: str) -> None:
    assert secret not in Redactor()(text)


@pytest.mark.parametrize("name", ["token_type", "expires_in", "password_field", "TOKEN_EXPIRE_MINUTES", "author",
                                  "keyboard", "monkey", "design", "inside", "sessions_count"])
def test_names_that_only_mention_a_secret_are_not_secret(name: str) -> None:
    assert not secret_key(name)


def test_every_value_of_a_login_answer_is_a_secret_and_public_fields_stay() -> None:
    from pytest_opscheck.probes.secrets import answer_secrets, set_cookie_values

    answer = {"sessionKey": "sess-0001-abcd", "value": "opaque-value-99", "token_type": "bearer", "expires_in": 3600,
              "user": {"email": "smoke@example.test", "id": 7, "refresh": ["rt-abcdef-123"]},
              "data": {"login": {"jwt": "eyJx.y.z", "__typename": "Login"}}, "pin": 482913, "active": True,
              "kind": "admin", "note": "welcome back", "path": ["login"]}
    cookies = set_cookie_values([("set-cookie", "odd_name=ck-777888; Path=/"), ("content-type", "x"),
                                 ("Set-Cookie", 'q="quoted-cookie-1"; HttpOnly')])
    assert cookies == {"ck-777888", "quoted-cookie-1"}
    folded = "a=fold-one-1; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Path=/, b=fold-two-2; HttpOnly"
    assert set_cookie_values([("set-cookie", folded)]) == {"fold-one-1", "fold-two-2"}
    found = answer_secrets(answer, cookies, public=["smoke"])
    assert found == {"sess-0001-abcd", "opaque-value-99", "rt-abcdef-123", "eyJx.y.z", "482913", "ck-777888",
                     "quoted-cookie-1"}
    deep: dict[str, object] = {}
    node = deep
    for _ in range(100_000):  # nested past any real answer: not walked, no RecursionError
        node["a"] = {}
        node = node["a"]  # type: ignore[assignment]
    assert answer_secrets(deep) == set()


def test_container_secrets_of_any_length_are_secrets() -> None:
    from pytest_opscheck.probes.resource.secret_env import secret_values

    env = {"PIN_SECRET": "4711", "REDIS_PASSWORD": "ab", "API_KEY": "123456789", "AUTH_ENABLED": "true",
           "JWT_SECRET": "changethis", "SECRET_KEY_FILE": "/run/secrets/k", "TOKEN_TTL": "60"}
    assert secret_values(env) == {"4711", "ab", "123456789"}
    redact = Redactor(secret_values(env))
    assert redact("PIN 4711, REDIS_PASSWORD=ab, key 123456789; port 47110 and abc stay") == \
        "PIN ***, REDIS_PASSWORD=***, key ***; port 47110 and abc stay"


@pytest.mark.parametrize(
    "template",
    [
        "SELECT 1 /* /* */ {s} */",
        "SELECT 1 /* a /* b /* c */ {s} */ {s} */ FROM t",
        "ALTER ROLE app PASSWORD '{s}'",
        "SELECT E'\\'{s}' AS x",
        "SELECT $tag${s}$tag$, $${s}$$",
        "SELECT 1 -- {s}\n, 2",
        "SELECT U&'{s}'",
        "SELECT 'it''s {s}'",
        "SELECT 1 /* unterminated {s}",
    ],
)
def test_sql_text_of_another_session_is_masked_past_nested_comments(template: str) -> None:
    from pytest_opscheck.probes.secrets import mask_sql

    secret = f"sql{secrets.token_hex(6)}"
    out = mask_sql(template.format(s=secret))
    assert secret not in out and out.startswith(("SELECT", "ALTER"))
    assert mask_sql('SELECT "Weird ""id""" FROM "t" WHERE a = 1') == 'SELECT "Weird ""id""" FROM "t" WHERE a = 1'


@pytest.mark.parametrize("broken", ["A{s}${{zz{s}", "{s}${{}}", "${{{s}", "x${{NAME!{s}}}", "{s}${{1{s}}}"])
def test_a_broken_template_in_env_is_refused_without_its_value(tmp_path: Path, broken: str) -> None:
    from pytest_opscheck.config import ConfigError, settings_from_table

    secret = f"pw{secrets.token_hex(8)}"
    (tmp_path / ".env").write_text(f"DB_PASSWORD={broken.format(s=secret)}\n")
    with pytest.raises(ConfigError) as refused:
        settings_from_table({"database_url": "postgresql://app:${DB_PASSWORD}@db/app"}, tmp_path / "opscheck.toml",
                            environ={})
    message = str(refused.value)
    assert "DB_PASSWORD: invalid template" in message
    assert secret not in message and secret[:8] not in message


def test_log_records_are_redacted_at_their_creation_whichever_handler_shows_them() -> None:
    from pytest_opscheck.sinks import install_log_redaction

    secret = f"log{secrets.token_hex(8)}"
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(self.format(record))

    logger = logging.getLogger("httpx.leakcheck")
    handler = Keep()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    restore = install_log_redaction(Redactor([secret]))
    try:
        logger.info("GET /x?sig=%s", secret)
        logger.debug("%(a)s and %(b)s", {"a": secret, "b": "ok"})
        logger.info("Authorization: Bearer %s", "unlearned0123456789")
        try:
            raise ValueError(f"refused {secret}")
        except ValueError:
            logger.exception("failed")
        logger.warning("page %s", "x" * 10_000_000)  # a body logged whole is bounded before it is kept
    finally:
        restore()
        logger.removeHandler(handler)
    text = "\n".join(seen)
    assert len(seen[-1]) < 70_000 and seen[-1].endswith("[truncated: 9936005 more characters]")
    assert secret not in text and "unlearned0123456789" not in text
    assert "GET /x?sig=***" in text and "*** and ok" in text and "ValueError: refused ***" in text


def test_metadata_is_redacted_by_name_and_shape() -> None:
    from pytest_opscheck.sinks import redact_metadata

    token = f"ghp_{secrets.token_hex(12)}"
    metadata = {"GIT_URL": f"https://x-access-token:{token}@github.com/a/b.git", "DEPLOY_TOKEN": "dpl123",
                "BUILD_URL": f"https://{token}@ci/", "Packages": {"pytest": "9.0", "API_KEY": "k"}, "JOB": "build"}
    found = redact_metadata(metadata, Redactor())
    assert token not in json.dumps(metadata)
    assert metadata["DEPLOY_TOKEN"] == MASK and metadata["Packages"] == {"pytest": "9.0", "API_KEY": MASK}
    assert metadata["JOB"] == "build"
    assert token in found and "dpl123" in found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    # A value shaped as a path or URL is masked whole only (by design: its fragments are ordinary text).
    secret=st.text(st.characters(min_codepoint=33, max_codepoint=0x24F, blacklist_categories=("Cs", "Cc")),
                   min_size=12, max_size=40).filter(lambda s: not s.startswith(("/", "~", ".")) and "://" not in s),
    encoding=st.sampled_from(sorted(ENCODINGS)),
    before=st.sampled_from(["", "x", "echo: ", '{"e": "', "<p>", "a=", "\n"]),
    wrapped_at=st.none() | st.integers(min_value=1, max_value=200),
)
def test_any_long_secret_in_any_encoding_is_masked(secret: str, encoding: str, before: str,
                                                    wrapped_at: int | None) -> None:
    """Hypothesis over the class: any secret of 12 to 40 characters (Latin, markup, quotes, escapes), any
    encoding, anything before it, wrapped anywhere or not: no 12-character fragment readable after."""
    form = ENCODINGS[encoding](secret)
    if wrapped_at is not None and wrapped_at < len(form):
        form = f"{form[:wrapped_at]}\n  {form[wrapped_at:]}"
    out = Redactor([secret])(f"{before}{form} end")
    assert leaks_of(secret, out) is None, out
