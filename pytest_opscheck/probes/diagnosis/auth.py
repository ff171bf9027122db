"""Authentication: the smoke account's login and token, what must be refused, CORS, and the strength of
the signing secret. Tokens and passwords never appear in a cause or evidence."""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass

from ...config import Auth
from ..resource.auth import AuthSession, Login, post_login, prepared, read_login
from ..resource.login_answer import message_of, short
from ..resource.site import Site
from ..result import Finding, table
from ..secrets import MIN_SECRET_LENGTH, PLACEHOLDERS
from ..transport.web import Answer, origin_of

LONGEST_SANE_TOKEN_DAYS = 30


def token_lifetime(token: str, now: float | None = None) -> tuple[str, str | None]:
    """What the token is and when it expires (its JWT `exp`, read without verifying), and a warning if any."""
    parts = token.split(".")
    if len(parts) != 3:
        return f"opaque token ({len(token)} characters, not a JWT)", None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return "token shaped like a JWT whose payload does not decode", None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        return "JWT without an exp claim", "the token never expires: a leaked token stays valid forever"
    left = exp - (time.time() if now is None else now)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(exp))
    if left <= 0:
        return (f"JWT, exp {stamp}",
                f"the token was already expired {-left / 60:.0f} min when issued: a wrong clock or "
                "ACCESS_TOKEN_EXPIRE_MINUTES")
    lifetime = f"{left / 86400:.1f} days" if left > 86400 else f"{left / 60:.0f} min"
    if left > LONGEST_SANE_TOKEN_DAYS * 86400:
        return (f"JWT, expires in {lifetime} (exp {stamp})",
                f"the token lives {left / 86400:.0f} days (> {LONGEST_SANE_TOKEN_DAYS}): "
                "lower ACCESS_TOKEN_EXPIRE_MINUTES")
    return f"JWT, expires in {lifetime} (exp {stamp})", None


def _token_evidence(login: Login, config: Auth) -> dict[str, str]:
    if login.token is None:
        return {}
    if config.session == "cookie":
        return {"session": "a session cookie (value withheld)"}
    description, warning = token_lifetime(login.token)
    evidence = {"token": description}
    if warning:
        evidence["warning"] = warning
    return evidence


def presented(config: Auth) -> str:
    """How the credential is presented, in words (never its value)."""
    if config.session == "cookie":
        return "the session cookie" + (f" and {config.csrf.header}" if config.csrf else "")
    if config.token_header:
        return f"the token in {config.token_header}"
    return f"the token as {config.scheme} in the Authorization header"


def _sent(config: Auth) -> str:
    if config.body is not None:
        return f"{config.style}: auth.body"
    return f"{config.style}: {config.username_field}, {config.password_field}"


def login(session: AuthSession) -> Finding:
    """The smoke account gets a credential (a token, or a session cookie)."""
    result = session.login
    config = session.config
    assert result.answer is not None
    evidence = {"login": f"{result.answer.line()} ({_sent(config)}; as {config.username})",
                **_token_evidence(result, config)}
    if result.credential is None:
        evidence["body"] = result.answer.excerpt()
        return Finding.failed(result.cause or "login gave no token", evidence)
    return Finding.passed(evidence)


def challenge(answer: Answer) -> str | None:
    """The auth scheme a 401's WWW-Authenticate asks for (`Token`, `Bearer`, `Basic`), if it names one."""
    value = answer.headers.get("www-authenticate", "").strip()
    return value.split()[0].split(",")[0] if value else None


def token_accepted(session: AuthSession, probe_path: str) -> Finding:
    """The probe path accepts the fresh credential, as the config presents it."""
    config = session.config
    answer = session.site.get(probe_path, credential=session.credential)
    how = presented(config)
    evidence = {"probe": f"{answer.line()} (with {how})", **_token_evidence(session.login, config)}
    if 200 <= answer.status < 300:
        return Finding.passed(evidence)
    evidence["body"] = answer.excerpt()
    if answer.status in (401, 403):
        what = "session" if config.session == "cookie" else "token"
        return Finding.failed(f"{probe_path} refuses the fresh {what}: {answer.status} {answer.reason}"
                              f"{_refusal_reason(answer, config)}", evidence)
    return Finding.failed(f"{probe_path} answers {answer.status} {answer.reason} with a valid credential", evidence)


def _refusal_reason(answer: Answer, config: Auth) -> str:
    """Why a backend refuses a credential it just issued: what it names in a structured way first (the scheme its
    WWW-Authenticate asks for), then what it says, then the usual causes."""
    asked = challenge(answer)
    sent = None if config.session == "cookie" or config.token_header else config.scheme
    if asked and sent and asked.lower() != sent.lower() and asked.lower() not in ("basic", "negotiate"):
        return f': the backend asks for the {asked} scheme (WWW-Authenticate: {asked}): set auth.scheme = "{asked}"'
    said = message_of(answer.json()) or _errors_of(answer.json())
    quoted = f', it says "{said}"' if said else ""
    if config.session == "cookie":
        return (f"{quoted} (the session is not kept: the session store, the cookie's Secure/domain settings, or the "
                "CSRF settings)")
    sent = f"sent in {config.token_header}" if config.token_header else f"sent as {config.scheme} in the " \
        "Authorization header"
    if config.style == "static":
        return f"{quoted} ({sent}: the token is revoked, expired, or not one this backend issued)"
    return (f"{quoted} ({sent}: a scheme or header it does not take? check auth.scheme / auth.token_header; "
            "else the secret that signs tokens differs from the one that checks them, or the token is expired)")


def _errors_of(data: object) -> str:
    errors = data.get("errors") if isinstance(data, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], str):
        return short(errors[0])
    return ""


@dataclass(frozen=True)
class Inconclusive:
    """A probe that could not tell: `reason` says why in one line (the check skips with it)."""

    reason: str
    ok: bool = False


def rejects_bad_password(session: AuthSession, probe_path: str | None = None) -> Finding | Inconclusive:
    """A wrong password is refused (400/401/403, a GraphQL error of a refused login, a cookie-session login that
    sets no session) while the right one logs in. It starts from a blank credential: the right login's session
    never rides along. A 2xx with a token (or a session the probe path accepts) is a security failure, a 5xx a
    server failure; when the right password fails too, a refusal proves nothing: inconclusive."""
    config = session.config
    wrong = f"opscheck-wrong-{secrets.token_hex(8)}"
    sent = prepared(session.site, config, session.blank)
    answer = post_login(session.site, config, wrong, sent)
    result = read_login(answer, config, sent)
    user = config.username
    evidence = {"wrong password": f"{answer.line()} (as {user}, a random wrong password)"}
    right = session.login
    if result.credential is not None and config.session == "cookie":
        return _bad_session(session, result, probe_path, evidence)
    if result.token is not None:
        evidence["body"] = "(token withheld)"
        return Finding.failed(f"SECURITY: login accepts a wrong password for {user}: {answer.status} "
                              f"{answer.reason}", evidence)
    if right.credential is None:
        assert right.answer is not None
        same = (right.kind, right.answer.status) == (result.kind, answer.status)
        wrong_way = "the wrong one the same way" if same else f"the wrong one: {_how(result)}"
        return Inconclusive(f"inconclusive: the right password fails too ({_how(right)}), {wrong_way}: a refused "
                            "wrong password proves nothing until auth.login passes")
    evidence["body"] = answer.excerpt()
    if result.kind == "refused":
        evidence.pop("body")
        return Finding.passed(evidence)
    if result.kind == "server":
        return Finding.failed(f"login fails with a server error on a wrong password: {answer.status} "
                              f"{answer.reason}", evidence)
    if result.kind == "malformed":
        return Inconclusive(f"inconclusive: the backend rejects the wrong password's request itself "
                            f"({answer.status} {answer.reason}: {result.said or 'a validation error'}), not the "
                            "password")
    return Finding.failed(f"login answers {answer.status} {answer.reason} to a wrong password "
                          "(expected 400, 401 or 403, or a GraphQL error)", evidence)


def _bad_session(
    session: AuthSession, result: Login, probe_path: str | None, evidence: dict[str, str]
) -> Finding | Inconclusive:
    """A wrong password's login answer set a cookie (express-session's saveUninitialized does on any request):
    whether that cookie is a logged-in session is what the probe path says to it."""
    assert result.credential is not None and result.answer is not None
    if not probe_path:
        return Inconclusive("inconclusive: the wrong password's answer sets a cookie, and without auth.probe_path "
                            "nothing tells whether it is a logged-in session")
    answer = session.site.get(probe_path, credential=result.credential, follow=False)
    evidence["probe"] = f"{answer.line()} (with the wrong password's cookie)"
    if 200 <= answer.status < 300:
        return Finding.failed(f"SECURITY: login accepts a wrong password for {session.config.username}: its session "
                              f"cookie opens {probe_path} ({answer.status} {answer.reason})", evidence)
    return Finding.passed(evidence)


_KINDS = {"refused": "refused", "malformed": "the request does not match the backend", "server": "a server error",
          "path": "no login at this path", "other": "no token"}


def _how(login: Login) -> str:
    status = f"{login.answer.status} {login.answer.reason}" if login.answer is not None else "no login"
    return f"{_KINDS.get(login.kind, login.kind)}: {status}"


def rejects_anonymous(site: Site, probe_path: str) -> Finding:
    """The probe path refuses a request without a token (401/403, or a redirect to a login page)."""
    answer = site.get(probe_path, follow=False)
    evidence = {"anonymous": f"{answer.line()} (no token)"}
    if answer.status in (401, 403) or 300 <= answer.status < 400:
        return Finding.passed(evidence)
    evidence["body"] = answer.excerpt()
    if 200 <= answer.status < 300:
        return Finding.failed(f"SECURITY: {probe_path} answers {answer.status} {answer.reason} to a request "
                              "without a token", evidence)
    if answer.status == 404:
        return Finding.failed(f"{probe_path} answers 404: is auth.probe_path right?", evidence)
    return Finding.failed(f"{probe_path} answers {answer.status} {answer.reason} to a request without a token "
                          "(expected 401 or 403)", evidence)


def same_origin(a: str, b: str) -> bool:
    return origin_of(a) == origin_of(b)


def cors_preflight(site: Site, path: str, origin: str) -> Finding:
    """An OPTIONS preflight from `origin` for a POST with Authorization and Content-Type is allowed."""
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    answer = site.request("OPTIONS", path, headers=headers, follow=False)
    cors = {k: v for k, v in answer.headers.items() if k.startswith("access-control-")}
    evidence = {
        "preflight": f"{answer.line()} (Origin: {origin})",
        "CORS headers": table(["header", "value"], [[k, v] for k, v in sorted(cors.items())]) if cors else "none",
    }
    allowed_origin = cors.get("access-control-allow-origin", "")
    methods = {m.strip().upper() for m in cors.get("access-control-allow-methods", "").split(",") if m.strip()}
    if not 200 <= answer.status < 300:
        return Finding.failed(f"CORS preflight from {origin} refused: {answer.status} {answer.reason}", evidence)
    if allowed_origin not in (origin, "*"):
        got = f"allows {allowed_origin}" if allowed_origin else "sends no Access-Control-Allow-Origin"
        return Finding.failed(f"CORS preflight from {origin}: the backend {got}", evidence)
    if methods and not methods & {"POST", "*"}:
        return Finding.failed(f"CORS preflight from {origin}: POST not in Access-Control-Allow-Methods", evidence)
    return Finding.passed(evidence)


def secret_verdict(value: str | None) -> str | None:
    """What is wrong with a signing secret, without repeating it; None when it is strong enough."""
    if value is None:
        return "is not set"
    if not value.strip():
        return "is empty"
    if value.strip().lower() in PLACEHOLDERS:
        return "holds a placeholder value"
    if len(value) < MIN_SECRET_LENGTH:
        return f"is too short ({len(value)} characters, at least {MIN_SECRET_LENGTH})"
    if len(set(value)) < 8:
        return f"is too uniform ({len(set(value))} distinct characters)"
    return None


def secret_strength(env: dict[str, str], names: tuple[str, ...] = ("SECRET_KEY", "JWT_SECRET")) -> Finding:
    """The token-signing secret among `names` is set and strong (names and lengths only, never values)."""
    present = [name for name in names if name in env]
    if not present:
        return Finding.failed(f"no token-signing secret in the backend's environment: none of {', '.join(names)} "
                              "is set")
    rows, problems = [], []
    for name in present:
        verdict = secret_verdict(env[name])
        rows.append([name, str(len(env[name])), verdict or "ok"])
        if verdict:
            problems.append(f"{name} {verdict}")
    evidence = {"secrets (values never shown)": table(["variable", "length", "verdict"], rows)}
    if problems:
        return Finding.failed("; ".join(problems), evidence)
    return Finding.passed(evidence)
