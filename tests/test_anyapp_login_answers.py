"""What a login answer means, read from what the app says in a structured way first (status, GraphQL
`extensions.code`, a validation error's shape, WWW-Authenticate) and its words last; a long message is quoted
with its decisive last line. Classes of answers, not single strings."""

from __future__ import annotations

import itertools

import pytest

from pytest_opscheck.probes.resource.login_answer import SAID_LIMIT, field_errors, read_answer, short

WORDS = ["Invalid credentials", "Wrong password", "Unexpected error", "Internal server error",
         "Cannot query field \"login\"", "validateCredentials failed", ""]
CODES = {"INTERNAL_SERVER_ERROR": "server", "UNAUTHENTICATED": "refused", "FORBIDDEN": "refused",
         "GRAPHQL_VALIDATION_FAILED": "malformed", "GRAPHQL_PARSE_FAILED": "malformed"}


@pytest.mark.parametrize(("code", "words"), itertools.product(sorted(CODES), WORDS))
def test_a_graphql_error_code_wins_over_its_words(code: str, words: str) -> None:
    expected = CODES[code]
    if expected == "malformed" and words in ("Invalid credentials", "Wrong password", "validateCredentials failed"):
        expected = "refused"  # a validation code on a refusal's words: Apollo's BAD_USER_INPUT-style refusals
    data = {"data": None, "errors": [{"message": words, "extensions": {"code": code}}]}
    assert read_answer(200, data, "data.login.accessToken", graphql=True).kind == expected


@pytest.mark.parametrize("words", WORDS)
def test_without_a_code_the_words_decide(words: str) -> None:
    data = {"data": None, "errors": [{"message": words}]}
    kind = read_answer(200, data, "data.login.accessToken", graphql=True).kind
    if words.startswith("Cannot query"):
        assert kind == "malformed"
    elif words in ("Unexpected error", "Internal server error"):
        assert kind == "server"
    else:
        assert kind == "refused"


@pytest.mark.parametrize("lines", [2, 5, 40])
@pytest.mark.parametrize("width", [10, 90, 400])
def test_a_long_message_keeps_its_first_and_decisive_last_line(lines: int, width: int) -> None:
    middle = ["x" * width for _ in range(lines)]
    last = "The table `app.User` does not exist."
    text = "\n".join(["Invalid `prisma.user.findUnique()` invocation:", *middle, last])
    quoted = short(text)
    assert quoted.startswith("Invalid `prisma.user.findUnique()` invocation:")
    assert quoted.endswith(last), quoted
    assert len(quoted) <= 2 * SAID_LIMIT


NESTED = [
    ({"user": {"email": ["This field is required."]}}, ("user.email",)),
    ({"user": {"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]}}, ("user.non_field_errors",)),
    ({"errors": {"user.email": ["is invalid"]}}, ("user.email",)),
    ({"user": ["This field is required."]}, ("user",)),
]


@pytest.mark.parametrize(("body", "named"), NESTED)
def test_nested_validation_errors_name_the_dotted_field(body: dict[str, object], named: tuple[str, ...]) -> None:
    found = field_errors(body)
    assert found is not None and found[1] == named
    assert read_answer(400, body, "user.token", graphql=False).kind == "malformed"


@pytest.mark.parametrize("message", ["Missing credentials", "username is required", "password and email are required"])
def test_a_400_naming_what_is_missing_is_a_malformed_request(message: str) -> None:
    assert read_answer(400, {"message": message}, "token", graphql=False).kind == "malformed"


@pytest.mark.parametrize("body", [{"errors": {"email or password": ["is invalid"]}}, {"message": "Invalid credentials"},
                                  {"non_field_errors": ["Unable to log in with provided credentials."]}])
@pytest.mark.parametrize("status", [400, 401, 422])
def test_refusals_in_the_shapes_apps_answer(body: dict[str, object], status: int) -> None:
    assert read_answer(status, body, "token", graphql=False).kind == "refused"
