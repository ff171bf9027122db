"""Authentication: the smoke account's login and token, what must be refused, CORS, and the strength of
the signing secret. Tokens and passwords never appear in a cause or evidence."""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass

from ..resource.auth import AuthSession, Login, post_login, read_login
from ..resource.site import Site
from ..result import Finding, table
from ..secrets import MIN_SECRET_LENGTH, PLACEHOLDERS
from ..transport.web import origin_of

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


def _token_evidence(login: Login) -> dict[str, str]:
    if login.token is None:
        return {}
    description, warning = token_lifetime(login.token)
    evidence = {"token": description}
    if warning:
        evidence["warning"] = warning
    return evidence


def login(session: AuthSession) -> Finding:
    """The smoke account gets a token."""
    result = session.login
    config = session.config
    sent = f"{config.style}: {config.username_field}, {config.password_field}"
    evidence = {"login": f"{result.answer.line()} ({sent}; as {config.username})",
                **_token_evidence(result)}
    if result.token is None:
        evidence["body"] = result.answer.excerpt()
        return Finding.failed(result.cause or "login gave no token", evidence)
    return Finding.passed(evidence)


def token_accepted(session: AuthSession, probe_path: str) -> Finding:
    """The probe path accepts the fresh token."""
    answer = session.site.get(probe_path, headers=session.headers())
    evidence = {"probe": f"{answer.line()} (with the token)", **_token_evidence(session.login)}
    if 200 <= answer.status < 300:
        return Finding.passed(evidence)
    evidence["body"] = answer.excerpt()
    if answer.status in (401, 403):
        return Finding.failed(f"{probe_path} refuses the fresh token: {answer.status} {answer.reason} (the secret "
                              "that signs tokens differs from the one that checks them, or the token is expired)",
                              evidence)
    return Finding.failed(f"{probe_path} answers {answer.status} {answer.reason} with a valid token", evidence)


@dataclass(frozen=True)
class Inconclusive:
    """A probe that could not tell: `reason` says why in one line (the check skips with it)."""

    reason: str
    ok: bool = False


def rejects_bad_password(session: AuthSession) -> Finding | Inconclusive:
    """A wrong password is refused (400/401/403, or a GraphQL error of a refused login) while the right one gets
    a token. A 2xx with a token is a security failure, a 5xx a server failure; when the right password fails
    too, a refusal proves nothing: inconclusive."""
    wrong = f"opscheck-wrong-{secrets.token_hex(8)}"
    answer = post_login(session.site, session.config, wrong)
    result = read_login(answer, session.config)
    user = session.config.username
    evidence = {"wrong password": f"{answer.line()} (as {user}, a random wrong password)"}
    right = session.login
    if result.token is not None:
        evidence["body"] = "(token withheld)"
        return Finding.failed(f"SECURITY: login accepts a wrong password for {user}: {answer.status} "
                              f"{answer.reason}", evidence)
    if right.token is None:
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


_KINDS = {"refused": "refused", "malformed": "the request does not match the backend", "server": "a server error",
          "path": "no login at this path", "other": "no token"}


def _how(login: Login) -> str:
    return f"{_KINDS.get(login.kind, login.kind)}: {login.answer.status} {login.answer.reason}"


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
