"""The smoke account, logged in once per sweep: the login's answer and token, and the backend client that
carries it. The token and the password never appear in a cause."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...config import Auth, Settings
from ..result import TargetUnreachable
from ..transport.web import Answer
from .site import Site

TOKEN_FIELDS = ("access_token", "token", "accessToken", "jwt")
REFUSED = (400, 401, 403)


@dataclass
class Login:
    """What the login answered, and the token when one came back (never shown)."""

    answer: Answer = field(repr=False)
    token: str | None = field(default=None, repr=False)
    cause: str | None = None


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

    def close(self) -> None:
        self.site.close()


def post_login(site: Site, config: Auth, password: str) -> Answer:
    """POST the credentials, form (OAuth2 password flow) or JSON style, on a connection closed after."""
    fields = {"username": config.username or "", "password": password}
    body: dict[str, Any] = {"data": fields} if config.style == "form" else {"json": fields}
    return site.request("POST", config.login_path, headers={"Connection": "close"}, **body)


def _field(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def read_login(answer: Answer, config: Auth) -> Login:
    """The token in a login answer, or the one-line reason there is none."""
    status = answer.status
    where = f"login {config.login_path}"
    if 200 <= status < 300:
        data = answer.json()
        if not isinstance(data, dict):
            return Login(answer, cause=f"{where} answered {status} with {answer.content_type or 'no body'}, not JSON")
        for name in (config.token_field, *TOKEN_FIELDS):
            value = _field(data, name)
            if isinstance(value, str) and value:
                return Login(answer, token=value)
        keys = ", ".join(sorted(str(k) for k in data)[:10]) or "none"
        return Login(answer, cause=f"{where} answered {status} without a token field {config.token_field} "
                                   f"(fields: {keys})")
    if status in REFUSED:
        return Login(answer, cause=f"{where} refused the smoke account {config.username}: {status} {answer.reason} "
                                   "(wrong password, or the account is missing or inactive)")
    if status in (404, 405):
        return Login(answer, cause=f"{where} answers {status} {answer.reason}: is auth.login_path right?")
    if status in (415, 422):
        other = "json" if config.style == "form" else "form"
        return Login(answer, cause=f"{where} rejected the request body: {status} {answer.reason} "
                                   f"(does it expect style = \"{other}\"?)")
    if status >= 500:
        return Login(answer, cause=f"{where} fails with a server error: {status} {answer.reason}")
    return Login(answer, cause=f"{where} answered {status} {answer.reason}, no token")


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
