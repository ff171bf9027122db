"""The smoke account, logged in once per sweep, and the credential it holds: a token (from a login answer, or a
static API token) presented as `Authorization: <scheme> <token>` or in a header of its own, or a session cookie
(with the CSRF token a Django-style app wants back). The login is a form, a JSON body (two fields, or a body
template with nesting) or a GraphQL mutation. The credential is bound to backend_url's origin (and auth.origin's):
`Credential.carried` decides what each request may carry. Tokens, cookies and the password never appear in a
cause."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ...config import Auth, Settings
from ...config.edge import NESTED_BODY
from ..result import TargetUnreachable
from ..transport.web import Answer, Credential, bound_to, set_cookies
from .login_answer import Kind, Reading, read_answer
from .site import Site


@dataclass
class Login:
    """What the login answered (None for a static token), what that means (`kind`: token, refused, malformed,
    server, path, other), and the credential when one came back (never shown)."""

    answer: Answer | None = field(repr=False)
    token: str | None = field(default=None, repr=False)
    cause: str | None = None
    kind: Kind = "other"
    said: str = ""
    credential: Credential | None = field(default=None, repr=False)


class AuthSession:
    """The smoke account, logged in once per sweep: `credential` (what a request may carry), `token`, `headers()`,
    `site` (the backend client)."""

    def __init__(self, site: Site, config: Auth, login: Login, blank: Credential | None = None) -> None:
        self.site = site
        self.config = config
        self.login = login
        # The credential before any login: bound to the same origins, carrying nothing (a second login starts here).
        self.blank = blank or bound_to(site.base_url)

    def __repr__(self) -> str:
        return f"AuthSession({self.config.username or 'static token'} at {self.site.base_url})"

    @property
    def credential(self) -> Credential:
        """The smoke account's credential; raises TargetUnreachable("auth", why) when the login gave none."""
        if self.login.credential is None:
            raise TargetUnreachable("auth", self.login.cause or "login gave no credential")
        return self.login.credential

    @property
    def token(self) -> str:
        """The token (a cookie session's: the session cookie's value); raises TargetUnreachable("auth", why) when
        the login gave none."""
        if self.login.token is None:
            raise TargetUnreachable("auth", self.login.cause or "login gave no token")
        return self.login.token

    def headers(self, url: str | None = None) -> dict[str, str]:
        """The headers that carry the credential to `url` (default: the backend): none off its origins."""
        return self.credential.carried(url or self.site.base_url)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every value of the credential, whatever its shape: the sweep treats them as secrets from now on."""
        found = set(self.login.credential.secrets) if self.login.credential else set()
        if self.login.token:
            found.add(self.login.token)
        return tuple(found)

    def close(self) -> None:
        self.site.close()


def fill(template: Any, values: dict[str, str]) -> Any:
    """`template` (auth.body) with `{username}` and `{password}` in its strings replaced."""
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    if isinstance(template, str):
        for name, value in values.items():
            template = template.replace("{" + name + "}", value)
    return template


def login_body(config: Auth, password: str) -> dict[str, Any]:
    """The request's keyword arguments: form fields, a JSON object, or a GraphQL mutation and its variables."""
    if config.body is not None:
        body = fill(config.body, {"username": config.username or "", "password": password})
        return {"data": body} if config.style == "form" else {"json": body}
    fields = {config.username_field: config.username or "", config.password_field: password}
    if config.style == "form":
        return {"data": fields}
    if config.style == "graphql":
        return {"json": {"query": config.query, "variables": fields}}
    return {"json": fields}


def with_token(credential: Credential, config: Auth, token: str) -> Credential:
    """`credential` presenting `token` as the config says: `Authorization: <scheme> <token>`, or `token_header`."""
    header = (config.token_header, token) if config.token_header else ("Authorization", f"{config.scheme} {token}")
    return dataclasses.replace(credential, headers=(header,))


def with_csrf(credential: Credential, config: Auth) -> Credential:
    """`credential` sending its CSRF cookie's value back in the CSRF header (unsafe methods only)."""
    if config.csrf is None:
        return credential
    value = dict(credential.cookies).get(config.csrf.cookie)
    return dataclasses.replace(credential, csrf=(config.csrf.header, value) if value else None)


def prepared(site: Site, config: Auth, blank: Credential) -> Credential:
    """The credential a login is posted with: for a CSRF-protected login, the CSRF cookie fetched first."""
    if config.csrf is None:
        return blank
    answer = site.get(config.csrf.path or config.login_path, credential=blank, headers={"Connection": "close"})
    return with_csrf(blank.with_cookies(set_cookies(answer.cookies)), config)


def post_login(site: Site, config: Auth, password: str, credential: Credential | None = None) -> Answer:
    """POST the credentials as the configured style, on a connection closed after. A cookie-session login is not
    followed: its session cookie comes with its own answer (Django's 302 to LOGIN_REDIRECT_URL)."""
    headers = {"Connection": "close"}
    if config.style == "graphql":
        headers["Accept"] = "application/graphql-response+json, application/json"
    if credential is not None and credential.csrf is not None:
        headers["Referer"] = site.url(config.login_path)  # Django checks it over https
    return site.request("POST", config.login_path, headers=headers, credential=credential,
                        follow=config.session is None, **login_body(config, password))


def read_login(answer: Answer, config: Auth, sent: Credential | None = None) -> Login:
    """The credential in a login answer, or the one-line reason there is none. `sent`: what the login was posted
    with (its CSRF cookie), which the credential builds on."""
    sent = sent or bound_to(answer.url)
    reading = read_answer(answer.status, answer.json(), config.token_field, config.style == "graphql")
    if answer.status == 403 and answer.json() is None and b"csrf" in answer.body[:4096].lower():
        reading = Reading("malformed", "CSRF verification failed")
    if config.session == "cookie":
        reading = _session_reading(answer, config, reading)
    if reading.kind == "token" and reading.token is not None:
        if config.session == "cookie":
            credential = with_csrf(sent.with_cookies(set_cookies(answer.cookies)), config)
            return Login(answer, token=reading.token, kind="token", credential=credential)
        return Login(answer, token=reading.token, kind="token", credential=with_token(sent, config, reading.token))
    return Login(answer, cause=_cause(answer, config, reading), kind=reading.kind, said=reading.said)


def _session_reading(answer: Answer, config: Auth, reading: Reading) -> Reading:
    """A cookie-session login: logged in when the answer (2xx, or a redirect elsewhere than the login) sets a
    session cookie; an answer that sets none, or sends the browser back to the login page, refused it."""
    if reading.kind in ("refused", "malformed", "server", "path") or answer.status >= 400:
        return reading if reading.kind != "token" else Reading("other")
    csrf = config.csrf.cookie if config.csrf else None
    new = [(name, value) for name, value in set_cookies(answer.cookies) if value and name != csrf]
    location = answer.headers.get("location", "")
    back = urlsplit(location).path.rstrip("/") == urlsplit(config.login_path).path.rstrip("/")
    if 300 <= answer.status < 400 and back:
        return Reading("refused", "redirected back to the login page")
    if not new:
        return Reading("refused", f"answered {answer.status} {answer.reason} without setting a session cookie")
    return Reading("token", token=new[-1][1])


def _cause(answer: Answer, config: Auth, reading: Reading) -> str:
    status, where = f"{answer.status} {answer.reason}", f"login {config.login_path}"
    graphql = config.style == "graphql"
    if reading.kind == "malformed":
        said = f", it says {reading.said}" if reading.said else ""
        return f"{where}: the login request does not match the backend: {status}{said} ({_hint(config, reading)})"
    if reading.kind == "refused":
        said = f" GraphQL error {reading.said}" if graphql else f" {status}"
        if config.session == "cookie" and reading.said and not graphql:
            ours = reading.said.startswith(("answered ", "redirected "))  # what the sweep saw, not the app's words
            said += f", {reading.said}" if ours else f', it says "{reading.said}"'
        return (f"{where} refused the smoke account {config.username}:{said} "
                "(wrong password, or the account is missing or inactive)")
    if reading.kind == "path":
        return f"{where} answers {status}: is auth.login_path right?"
    if reading.kind == "server":
        said = f" ({reading.said})" if reading.said else ""
        return f"{where} fails with a server error: {status}{said}"
    if 200 <= answer.status < 300:
        data = answer.json()
        if graphql and isinstance(data, dict) and isinstance(data.get("data"), dict):
            return (f"{where} answered {status} without a token at {config.token_field} "
                    f"(data: {_keys(data['data'])}): set auth.token_field, e.g. data.login.accessToken")
        if not isinstance(data, dict):
            return (f"{where} answered {status} with {answer.content_type or 'no body'}, not JSON: if the login "
                    'answers with a session cookie, set auth.session = "cookie"')
        return (f"{where} answered {status} without a token field {config.token_field} (fields: {_keys(data)}): set "
                'auth.token_field, or auth.session = "cookie" when the login answers with a session cookie')
    return f"{where} answered {status}, no token"


def _keys(data: dict[str, Any]) -> str:
    return ", ".join(sorted(str(k) for k in data)[:10]) or "none"


def _hint(config: Auth, reading: Reading) -> str:
    """What to change in the config so the request matches what the backend named: one line, and never one that
    another answer would take back (a field that may be a nesting is offered both ways at once)."""
    if reading.said == "CSRF verification failed":
        if config.csrf is None:
            return ("the backend wants a CSRF token back: set auth.csrf to a table naming its cookie and header "
                    "(Django: csrftoken and X-CSRFToken)")
        return (f"the CSRF token was sent from cookie {config.csrf.cookie} in {config.csrf.header}: check those names, "
                "and csrf.path (a page that sets the cookie)")
    if config.style == "graphql":
        return "check auth.query against the backend's schema and its variables"
    nested = NESTED_BODY
    if config.body is not None:
        named = f"it names {', '.join(reading.named[:3])}: " if reading.named else ""
        return f"{named}check auth.body against the fields the backend expects, and auth.style"
    sent = {config.username_field, config.password_field}
    unsent = [name for name in reading.named if name not in sent]
    if any("." in name for name in reading.named):
        return f"it names {', '.join(reading.named[:3])}, fields inside a table: write the login body as {nested}"
    if unsent and "pass" in unsent[0].lower():
        return f'the backend asks for {unsent[0]}: set auth.password_field to "{unsent[0]}"'
    if unsent and unsent[0].lower() in ("username", "email", "login", "user_name", "identifier", "mail"):
        return f'the backend asks for {unsent[0]}: set auth.username_field to "{unsent[0]}"'
    if unsent:
        return (f'the backend asks for {unsent[0]}: set auth.username_field to "{unsent[0]}" if that field holds the '
                f"username; if it holds the fields (a nested body), write {nested}")
    if reading.named:
        other = "json" if config.style == "form" else "form"
        return (f"it finds no {' and '.join(reading.named[:2])} in the {config.style} body it was sent: does it "
                f'expect style = "{other}"?')
    return (f"it was sent {config.style} with {config.username_field} and {config.password_field}: check "
            "auth.style, auth.username_field and auth.password_field, or write auth.body")


def credential_base(settings: Settings) -> Credential:
    """The empty credential of the sweep: bound to backend_url's origin and auth.origin's, secure when the login
    is made (or, for a static token, the backend is asked) over https."""
    assert settings.backend_url is not None and settings.auth is not None
    auth = settings.auth
    login = auth.login_path if urlsplit(auth.login_path).scheme else settings.backend_url
    blank = bound_to(settings.backend_url, auth.origin)
    return dataclasses.replace(blank, secure=urlsplit(login).scheme == "https")


def open_auth(settings: Settings) -> AuthSession:
    """Log the smoke account in once (a static token: none); every auth check shares the outcome (raises only
    when unreachable)."""
    assert settings.backend_url is not None and settings.auth is not None
    config = settings.auth
    site = Site("auth", settings.backend_url, settings)
    blank = credential_base(settings)
    if config.style == "static":
        assert config.token is not None
        credential = with_token(blank, config, config.token)
        return AuthSession(site, config, Login(None, token=config.token, kind="token", credential=credential), blank)
    assert config.password is not None
    try:
        sent = prepared(site, config, blank)
        answer = post_login(site, config, config.password, sent)
    except TargetUnreachable:
        site.close()
        raise
    return AuthSession(site, config, read_login(answer, config, sent), blank)
