"""Logins that are not {"username", "password"}, against real backends on 127.0.0.1: a GraphQL login mutation
(strawberry), an `email` field JSON login and an OAuth2 form login (FastAPI), NestJS ValidationPipe's answers.
Each right password logs in, each wrong one is refused, and a request the backend finds malformed is named
"the login request does not match the backend", never a wrong password; `auth.rejects_bad_password` passes
only when the right password logs in, and is inconclusive (skipped, with why) when it does not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graphql_servers import LOGIN_MUTATION, WRONG_MUTATION, graphql_app
from login_servers import fastapi_email_app, nest_shaped_app
from servers import SMOKE_PASSWORD, SMOKE_USER, Faults, Uvicorn, serving
from test_checks_edge import sweep

from pytest_opscheck.config import ConfigError, Settings, settings_from_table
from pytest_opscheck.probes.diagnosis import auth as probe
from pytest_opscheck.probes.resource.auth import open_auth
from pytest_opscheck.probes.resource.login_answer import read_answer

WRONG = "PLANTED-wrong-pw-5e6f"
AUTH = "auth.login or auth.rejects_bad_password"
DOES_NOT_MATCH = "the login request does not match the backend"


@pytest.fixture(scope="module")
def faults() -> Faults:
    return Faults()


@pytest.fixture(autouse=True)
def healthy(faults: Faults, monkeypatch: pytest.MonkeyPatch) -> None:
    faults.active.clear()
    monkeypatch.setenv("OPSCHECK_PASSWORD", SMOKE_PASSWORD)


@pytest.fixture(scope="module")
def graphql(faults: Faults) -> Iterator[Uvicorn]:
    with serving(graphql_app(faults)) as server:
        yield server


@pytest.fixture(scope="module")
def fastapi(faults: Faults) -> Iterator[Uvicorn]:
    with serving(fastapi_email_app(faults)) as server:
        yield server


@pytest.fixture(scope="module")
def nest(faults: Faults) -> Iterator[Uvicorn]:
    with serving(nest_shaped_app(faults)) as server:
        yield server


def config(url: str, **auth: str) -> str:
    fields = {"username": SMOKE_USER, "password": "${OPSCHECK_PASSWORD}", **auth}
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())
    return f'backend_url = "{url}"\ntimeout = 2\n[auth]\n{lines}'


def graphql_config(url: str, query: str = LOGIN_MUTATION) -> str:
    return config(url, login_path="/graphql", style="graphql", query=query, token_field="data.login.accessToken")


def settings(url: str, **auth: str) -> Settings:
    table = {"backend_url": url, "timeout": 2.0,
             "auth": {"username": SMOKE_USER, "password": "${OPSCHECK_PASSWORD}", **auth}}
    return settings_from_table(table, Path("opscheck.toml"), environ={"OPSCHECK_PASSWORD": SMOKE_PASSWORD})


def inconclusive(record: dict[str, Any], how: str) -> None:
    assert record["outcome"] == "skipped", record
    assert record["message"] == (f"inconclusive: the right password fails too ({how}), the wrong one the same way: "
                                 "a refused wrong password proves nothing until auth.login passes")


# --- GraphQL ----------------------------------------------------------------------------------------------


def test_graphql_login_right_password(pytester: pytest.Pytester, graphql: Uvicorn, faults: Faults) -> None:
    records = sweep(pytester, graphql_config(graphql.url), AUTH, faults)
    assert records["auth.login"]["outcome"] == "passed", records["auth.login"]
    assert records["auth.login"]["evidence"]["login"].startswith("POST /graphql → 200 OK in ")
    assert "(graphql: username, password; as smoke@example.com)" in records["auth.login"]["evidence"]["login"]
    assert records["auth.login"]["evidence"]["token"].startswith("JWT, expires in 60 min")
    # A wrong password gets HTTP 200 with an UNAUTHENTICATED error: a refusal, so this passes.
    assert records["auth.rejects_bad_password"]["outcome"] == "passed", records["auth.rejects_bad_password"]
    assert records["auth.rejects_bad_password"]["evidence"]["wrong password"].startswith("POST /graphql → 200 OK")


def test_graphql_login_wrong_password(
    pytester: pytest.Pytester, graphql: Uvicorn, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSCHECK_PASSWORD", WRONG)
    records = sweep(pytester, graphql_config(graphql.url), AUTH, faults)
    assert records["auth.login"]["message"] == (
        'login /graphql refused the smoke account smoke@example.com: GraphQL error "Invalid credentials" '
        "(wrong password, or the account is missing or inactive)"
    )
    inconclusive(records["auth.rejects_bad_password"], "refused: 200 OK")
    assert WRONG not in json.dumps(records)


def test_graphql_login_malformed_request(pytester: pytest.Pytester, graphql: Uvicorn, faults: Faults) -> None:
    """The mutation names an argument the schema does not have: graphql-core's validation errors, HTTP 200."""
    records = sweep(pytester, graphql_config(graphql.url, WRONG_MUTATION), AUTH, faults)
    message = records["auth.login"]["message"]
    assert message.startswith(
        f"login /graphql: {DOES_NOT_MATCH}: 200 OK, it says \"Unknown argument 'username' on field "
        "'Mutation.login'.\"; \"Argument 'Mutation.login(email:)' of type 'String!' is required, but it was not "
        'provided."'
    ), message
    assert message.endswith("(check auth.query against the backend's schema and its variables)")
    assert "wrong password" not in message
    inconclusive(records["auth.rejects_bad_password"], "the request does not match the backend: 200 OK")


def test_graphql_login_server_error(graphql: Uvicorn, faults: Faults) -> None:
    faults.active.add("login_broken")
    session = open_auth(settings(graphql.url, login_path="/graphql", style="graphql", query=LOGIN_MUTATION))
    try:
        assert session.login.cause == 'login /graphql fails with a server error: 200 OK ("Internal server error")'
    finally:
        session.close()


# --- an email field (FastAPI), NestJS's ValidationPipe, FastAPI's OAuth2 form ----------------------------


def test_email_field_login_right_password(pytester: pytest.Pytester, fastapi: Uvicorn, faults: Faults) -> None:
    records = sweep(pytester, config(fastapi.url, login_path="/api/auth/login", style="json",
                                     username_field="email"), AUTH, faults)
    assert {k: r["outcome"] for k, r in records.items()} == {
        "auth.login": "passed", "auth.rejects_bad_password": "passed"}
    assert "(json: email, password; as smoke@example.com)" in records["auth.login"]["evidence"]["login"]


def test_email_field_login_wrong_password(
    pytester: pytest.Pytester, fastapi: Uvicorn, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSCHECK_PASSWORD", WRONG)
    records = sweep(pytester, config(fastapi.url, login_path="/api/auth/login", style="json",
                                     username_field="email"), AUTH, faults)
    assert records["auth.login"]["message"] == (
        "login /api/auth/login refused the smoke account smoke@example.com: 401 Unauthorized "
        "(wrong password, or the account is missing or inactive)"
    )
    inconclusive(records["auth.rejects_bad_password"], "refused: 401 Unauthorized")


def test_email_field_login_malformed_request(pytester: pytest.Pytester, fastapi: Uvicorn, faults: Faults) -> None:
    """`username` sent where the backend's model wants `email`: FastAPI's own 422 naming body.email."""
    records = sweep(pytester, config(fastapi.url, login_path="/api/auth/login", style="json"), AUTH, faults)
    assert records["auth.login"]["message"] == (
        f"login /api/auth/login: {DOES_NOT_MATCH}: 422 Unprocessable Entity, it says email: Field required "
        '(the backend asks for email: set auth.username_field to "email")'
    )
    inconclusive(records["auth.rejects_bad_password"], "the request does not match the backend: 422 Unprocessable "
                                                       "Entity")


def test_nest_validation_pipe_is_not_a_wrong_password(nest: Uvicorn) -> None:
    malformed = open_auth(settings(nest.url, login_path="/auth/login", style="json"))
    right = open_auth(settings(nest.url, login_path="/auth/login", style="json", username_field="email"))
    try:
        assert malformed.login.kind == "malformed"
        assert malformed.login.cause == (
            f"login /auth/login: {DOES_NOT_MATCH}: 400 Bad Request, it says email must be an email; email should "
            'not be empty; property username should not exist (the backend asks for email: set '
            'auth.username_field to "email")'
        )
        assert isinstance(probe.rejects_bad_password(malformed), probe.Inconclusive)
        assert right.login.token is not None  # a 201 with access_token
        finding = probe.rejects_bad_password(right)
        assert finding.ok and "401 Unauthorized" in finding.evidence["wrong password"]
    finally:
        malformed.close()
        right.close()


def test_form_login_sent_as_json_names_the_style(fastapi: Uvicorn) -> None:
    session = open_auth(settings(fastapi.url, login_path="/api/v1/login/access-token", style="json"))
    try:
        assert session.login.cause == (
            f"login /api/v1/login/access-token: {DOES_NOT_MATCH}: 422 Unprocessable Entity, it says username: "
            "Field required; password: Field required (it finds no username and password in the json body it was "
            'sent: does it expect style = "form"?)'
        )
    finally:
        session.close()


# --- answers as other frameworks write them ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "graphql", "kind"),
    [
        # express-validator
        (400, {"errors": [{"type": "field", "msg": "Invalid value", "path": "email", "location": "body"}]}, False,
         "malformed"),
        # zod's issues passed on by an Express handler
        (400, {"error": {"issues": [{"code": "invalid_type", "path": ["email"], "message": "Required"}]}}, False,
         "malformed"),
        # Laravel: a missing field, and a wrong password (a 422 on the email field, in words of a refusal)
        (422, {"message": "The email field is required.", "errors": {"email": ["The email field is required."]}},
         False, "malformed"),
        (422, {"message": "These credentials do not match our records.",
               "errors": {"email": ["These credentials do not match our records."]}}, False, "refused"),
        # Django REST framework: a missing field, and a wrong password
        (400, {"username": ["This field is required."]}, False, "malformed"),
        (400, {"non_field_errors": ["Unable to log in with provided credentials."]}, False, "refused"),
        # FastAPI's full-stack template on a wrong password
        (400, {"detail": "Incorrect email or password"}, False, "refused"),
        # Apollo Server: validation is a 400, a coercion error BAD_USER_INPUT, a thrown Error INTERNAL_SERVER_ERROR
        (400, {"errors": [{"message": 'Cannot query field "token" on type "AuthPayload".',
                           "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]}, True, "malformed"),
        (200, {"errors": [{"message": 'Variable "$email" of required type "String!" was not provided.',
                           "extensions": {"code": "BAD_USER_INPUT"}}]}, True, "malformed"),
        (200, {"errors": [{"message": "Unexpected error.", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}],
               "data": None}, True, "server"),
        # NestJS GraphQL: a ValidationPipe's messages in the error, an UnauthorizedException
        (200, {"errors": [{"message": "Bad Request Exception", "extensions": {
            "code": "BAD_REQUEST", "originalError": {"message": ["email must be an email"], "statusCode": 400}}}]},
         True, "malformed"),
        (200, {"errors": [{"message": "Unauthorized", "extensions": {"code": "UNAUTHENTICATED"}}], "data": None},
         True, "refused"),
        # a token under the usual names: {"data": {"token"}} (Express), a mutation returning the token itself
        (200, {"success": True, "data": {"token": "opaque-token-1"}}, False, "token"),
        (200, {"data": {"login": "opaque-token-2"}}, True, "token"),
        # ... but a REST answer's message under `data` is no token
        (200, {"data": {"message": "Invalid credentials"}}, False, "other"),
    ],
)
def test_login_answers_as_frameworks_write_them(status: int, body: Any, graphql: bool, kind: str) -> None:
    assert read_answer(status, body, "access_token", graphql).kind == kind


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"style": "graphql"}, 'auth.query: style = "graphql" needs the login mutation, e.g. query = "mutation Login('),
        ({"style": "json", "query": LOGIN_MUTATION}, 'auth.query: read only with style = "graphql" (style is "json")'),
        ({"style": "graphql", "query": "mutation($email: String!, $password: String!) { login(email: $email, "
                                        "password: $password) { accessToken } }"},
         "auth.query: the mutation declares no $username variable (it declares $email, $password)"),
        ({"username_field": "email", "password_field": "email"}, "auth.password_field: the same name as"),
        ({"username_field": "e mail"}, "auth.username_field: expected a field name such as \"email\", got 'e mail'"),
        ({"token_field": "data..token"}, "auth.token_field: expected a dotted path such as data.login.accessToken"),
        ({"style": "soap"}, "auth.style: expected 'form' or 'json' or 'graphql' or 'static', got 'soap'"),
    ],
)
def test_login_config_errors_are_one_line(auth: dict[str, str], message: str) -> None:
    table = {"backend_url": "http://127.0.0.1:9", "auth": {"login_path": "/login", **auth}}
    with pytest.raises(ConfigError) as error:
        settings_from_table(table, Path("opscheck.toml"), environ={})
    text = str(error.value)
    assert text.startswith(f"opscheck.toml: {message}"), text
    assert "\n" not in text


def test_graphql_variables_follow_the_field_names() -> None:
    """username_field / password_field name the GraphQL variables too: a mutation with $email is accepted."""
    query = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }"
    table = {"backend_url": "http://127.0.0.1:9",
             "auth": {"login_path": "/graphql", "style": "graphql", "query": query, "username_field": "email"}}
    auth = settings_from_table(table, Path("opscheck.toml"), environ={}).auth
    assert auth is not None and auth.username_field == "email"


def test_graphql_backend_failure_is_classified_by_its_code_and_quoted_to_the_decisive_line(
    graphql: Uvicorn, faults: Faults
) -> None:
    """Apollo's INTERNAL_SERVER_ERROR wins over the word "credentials" in Prisma's message, and the quote keeps
    the last line, where Prisma says what failed."""
    faults.active.add("prisma_table_gone")
    config = settings(graphql.url, login_path="/graphql", style="graphql", query=LOGIN_MUTATION,
                      token_field="data.login.accessToken")
    session = open_auth(config)
    try:
        cause = probe.login(session).cause
    finally:
        session.close()
    assert cause.startswith("login /graphql fails with a server error: 200 OK"), cause
    assert "The table `blog.User` does not exist in the current database." in cause, cause
    assert "wrong password" not in cause
