"""The smoke account, logged in once per sweep: the login's answer and token, and the backend client that
carries it. The login is a form, a JSON body or a GraphQL mutation, with the field names the backend uses.
The token and the password never appear in a cause."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...config import Auth, Settings
from ..result import TargetUnreachable
from ..transport.web import Answer
from .login_answer import Kind, Reading, read_answer
from .site import Site


@dataclass
class Login:
    """What the login answered, what that means (`kind`: token, refused, malformed, server, path, other), and
    the token when one came back (never shown)."""

    answer: Answer = field(repr=False)
    token: str | None = field(default=None, repr=False)
    cause: str | None = None
    kind: Kind = "other"
    said: str = ""


class AuthSession:
    """The smoke account, logged in once per sweep: `token`, `headers()`, `site` (the backend client)."""

    def __init__(self, site: Site, config: Auth, login: Login) -> None:
        self.site = site
        self.config = config
        self.login = login

    def __repr__(self) -> str:
        return f"AuthSession({self.config.username} at {self.site.base_url})"

    @property
    def token(self) -> str:
        """The token; raises TargetUnreachable("auth", why) when the login gave none."""
        if self.login.token is None:
            raise TargetUnreachable("auth", self.login.cause or "login gave no token")
        return self.login.token

    def headers(self) -> dict[str, str]:
        """The Authorization header carrying the token."""
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def secrets(self) -> tuple[str, ...]:
        """The token the login obtained, whatever its shape: the sweep treats it as a secret from now on."""
        return (self.login.token,) if self.login.token else ()

    def close(self) -> None:
        self.site.close()


def login_body(config: Auth, password: str) -> dict[str, Any]:
    """The request's keyword arguments: form fields, a JSON object, or a GraphQL mutation and its variables."""
    fields = {config.username_field: config.username or "", config.password_field: password}
    if config.style == "form":
        return {"data": fields}
    if config.style == "graphql":
        return {"json": {"query": config.query, "variables": fields}}
    return {"json": fields}


def post_login(site: Site, config: Auth, password: str) -> Answer:
    """POST the credentials as the configured style, on a connection closed after."""
    headers = {"Connection": "close"}
    if config.style == "graphql":
        headers["Accept"] = "application/graphql-response+json, application/json"
    return site.request("POST", config.login_path, headers=headers, **login_body(config, password))


def read_login(answer: Answer, config: Auth) -> Login:
    """The token in a login answer, or the one-line reason there is none."""
    reading = read_answer(answer.status, answer.json(), config.token_field, config.style == "graphql")
    if reading.kind == "token":
        return Login(answer, token=reading.token, kind="token")
    return Login(answer, cause=_cause(answer, config, reading), kind=reading.kind, said=reading.said)


def _cause(answer: Answer, config: Auth, reading: Reading) -> str:
    status, where = f"{answer.status} {answer.reason}", f"login {config.login_path}"
    graphql = config.style == "graphql"
    if reading.kind == "malformed":
        said = f", it says {reading.said}" if reading.said else ""
        return f"{where}: the login request does not match the backend: {status}{said} ({_hint(config, reading)})"
    if reading.kind == "refused":
        said = f" GraphQL error {reading.said}" if graphql else f" {status}"
        return (f"{where} refused the smoke account {config.username}:{said} "
                "(wrong password, or the account is missing or inactive)")
    if reading.kind == "path":
        return f"{where} answers {status}: is auth.login_path right?"
    if reading.kind == "server":
        said = f" ({reading.said})" if graphql and reading.said else ""
        return f"{where} fails with a server error: {status}{said}"
    if 200 <= answer.status < 300:
        data = answer.json()
        if graphql and isinstance(data, dict) and isinstance(data.get("data"), dict):
            return (f"{where} answered {status} without a token at {config.token_field} "
                    f"(data: {_keys(data['data'])}): set auth.token_field, e.g. data.login.accessToken")
        if not isinstance(data, dict):
            return f"{where} answered {status} with {answer.content_type or 'no body'}, not JSON"
        return f"{where} answered {status} without a token field {config.token_field} (fields: {_keys(data)})"
    return f"{where} answered {status}, no token"


def _keys(data: dict[str, Any]) -> str:
    return ", ".join(sorted(str(k) for k in data)[:10]) or "none"


def _hint(config: Auth, reading: Reading) -> str:
    """What to change in the config so the request matches what the backend named."""
    if config.style == "graphql":
        return "check auth.query against the backend's schema and its variables"
    sent = {config.username_field, config.password_field}
    unsent = [name for name in reading.named if name not in sent]
    if unsent:
        key = "password_field" if "pass" in unsent[0].lower() else "username_field"
        return f'the backend asks for {unsent[0]}: set auth.{key} to "{unsent[0]}"'
    if reading.named:
        other = "json" if config.style == "form" else "form"
        return (f"it finds no {' and '.join(reading.named[:2])} in the {config.style} body it was sent: does it "
                f'expect style = "{other}"?')
    return (f"it was sent {config.style} with {config.username_field} and {config.password_field}: check "
            "auth.style, auth.username_field and auth.password_field")


def open_auth(settings: Settings) -> AuthSession:
    """Log the smoke account in once; every auth check shares the outcome (raises only when unreachable)."""
    assert settings.backend_url is not None and settings.auth is not None and settings.auth.password is not None
    site = Site("auth", settings.backend_url, settings)
    try:
        answer = post_login(site, settings.auth, settings.auth.password)
    except TargetUnreachable:
        site.close()
        raise
    return AuthSession(site, settings.auth, read_login(answer, settings.auth))
