"""Authentication failures: the signing secret, the smoke login and its token, what must be refused, CORS."""

from __future__ import annotations

import pytest

from pytest_opscheck.config import Settings
from pytest_opscheck.config.keys import skipped_for
from pytest_opscheck.fixtures.core import open_target
from pytest_opscheck.fixtures.edge import Http
from pytest_opscheck.probes.diagnosis import auth as probe
from pytest_opscheck.probes.resource.auth import AuthSession
from pytest_opscheck.probes.resource.stack import Stack
from pytest_opscheck.targets import Targets
from pytest_opscheck.verdict import expect, fail, skip_unless_configured


def _session(targets: Targets) -> AuthSession:
    __tracebackhide__ = True
    session = open_target(targets, "auth")
    assert isinstance(session, AuthSession)
    return session


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """The backend's token-signing secret (SECRET_KEY for FastAPI, JWT_SECRET for Node) is missing, a
placeholder such as changethis, or too short. See what the container has (names only, never values):
  {compose} exec {backend} env | grep -E "SECRET|JWT" | cut -d= -f1
Set a strong value in {env_file} (openssl rand -hex 32), then:  {compose} up -d {backend}
Changing it invalidates every token already issued: change it on purpose, never by accident."""
)
@pytest.mark.topics("auth")
def test_secret_configured(request: pytest.FixtureRequest, opscheck_config: Settings) -> None:
    if not (opscheck_config.compose_project or opscheck_config.compose_file):
        pytest.skip("not configured: compose_project")
    stack: Stack = request.getfixturevalue("stack")
    containers = stack.of_service(opscheck_config.backend_service)
    if not containers:
        fail(f"no container of service {opscheck_config.backend_service} in the project to read the secret from")
    expect(probe.secret_strength(containers[0].env))


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """The smoke account gets no credential (no token, no session). Try the same login by hand:
  {login_curl}
  where the file holds the smoke account's username and password from {env_file}.
- 5xx: the backend fails; read  {compose} logs {backend} --tail=100  (database? migrations?)
- 400/401/403: the smoke account or its password in {env_file} is wrong, or the account is inactive
- 404: auth.login_path is wrong
- "the login request does not match the backend" (a 422, a validation error, GraphQL errors): the fields
  the backend named are not the ones sent: set auth.style, auth.username_field / auth.password_field
  (e.g. "email"), a nested auth.body, or for GraphQL auth.query (its $username and $password) and
  auth.token_field
- a 200 without a token: set auth.token_field, or auth.session = "cookie" when the login sets a session
  cookie (and auth.csrf when it wants a CSRF token back, as Django does)
Look for token errors:  {compose} logs {backend} | grep -i token"""
)
@pytest.mark.topics("auth")
# Not "backend": a backend that cannot be reached fails the login through its target (auth is reached through
# it), and a refused login is its own fault, not a health check's (a wrong health_path among them).
@pytest.mark.depends_on("db", "db.migrations_current")
@pytest.mark.service("backend")
def test_login(opscheck_targets: Targets, opscheck_config: Settings) -> None:
    if opscheck_config.auth is not None and opscheck_config.auth.style == "static":
        pytest.skip('auth.style = "static": a long-lived API token, no login to check (auth.token_accepted checks it)')
    expect(probe.login(_session(opscheck_targets)))


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """A credential fresh from the login is refused. When the backend names the scheme it wants
(WWW-Authenticate: Token), set auth.scheme (or auth.token_header for a header of its own). Else the secret
that signs tokens and the one that checks them differ (SECRET_KEY / JWT_SECRET changed, or differs between
replicas), or tokens expire at once (check ACCESS_TOKEN_EXPIRE_MINUTES and the server's clock); a session
cookie that is not kept points at the session store or the cookie's Secure/domain settings.
Ask it yourself:  curl -i {probe_url} {as_user}
  {compose} exec {backend} env | grep -E "SECRET|JWT" | cut -d= -f1
Make the secret the same everywhere, then:  {compose} up -d {backend}"""
)
@pytest.mark.topics("auth")
@pytest.mark.depends_on("auth")
def test_token_accepted(auth: AuthSession, opscheck_config: Settings) -> None:
    skip_unless_configured(skipped_for(opscheck_config, "auth.probe_path"))
    assert opscheck_config.auth is not None and opscheck_config.auth.probe_path is not None
    expect(probe.token_accepted(auth, opscheck_config.auth.probe_path))


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """The login does not refuse a wrong password with 400/401/403 (or, for GraphQL, a login error).
- 2xx: a SECURITY incident, anyone can log in: take the login offline or roll back the deploy now, and
  tell the security team.
- 5xx: the login crashes when the password is wrong; its traceback is in
  {compose} logs {backend} --tail=100"""
)
@pytest.mark.topics("auth")
@pytest.mark.depends_on("auth")
def test_rejects_bad_password(opscheck_targets: Targets, opscheck_config: Settings) -> None:
    session = _session(opscheck_targets)  # skips first when no login is configured
    assert opscheck_config.auth is not None
    if opscheck_config.auth.style == "static":
        pytest.skip('auth.style = "static": no login, no password to get wrong')
    finding = probe.rejects_bad_password(session, opscheck_config.auth.probe_path)
    if isinstance(finding, probe.Inconclusive):
        # Neither a pass nor a failure: the gate counts it as neither, the report shows why.
        pytest.skip(finding.reason)
    expect(finding)


@pytest.mark.severity("P1")
@pytest.mark.resolution(
    """A protected path answers a request that carries no token: its data is open to anyone (SECURITY).
Roll back the deploy that dropped the auth dependency / middleware, or block the path at the proxy,
and tell the security team. Verify:  curl -i {probe_url}   must answer 401."""
)
@pytest.mark.topics("auth")
@pytest.mark.depends_on("backend")
@pytest.mark.service("backend")
def test_rejects_anonymous(http: Http, opscheck_config: Settings) -> None:
    skip_unless_configured(skipped_for(opscheck_config, "auth.probe_path"))
    assert opscheck_config.auth is not None and opscheck_config.auth.probe_path is not None
    site = http.backend
    finding = probe.rejects_anonymous(site, opscheck_config.auth.probe_path)
    expect(finding)


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """The browser's CORS preflight from the frontend's origin is refused: logins from the web app fail
although curl works. Verify the CORS settings: add the frontend's origin to the allowed origins
(FastAPI full-stack template: FRONTEND_HOST in {env_file}, BACKEND_CORS_ORIGINS in older versions of it;
NestJS: app.enableCors's origin, often CORS_ORIGIN; Express: the cors() middleware's origin list), then
  {compose} up -d {backend}
Check:  curl -i -X OPTIONS {login_url} -H "Origin: {frontend_url}" -H "Access-Control-Request-Method: POST\""""
)
@pytest.mark.topics("auth")
@pytest.mark.depends_on("backend")
@pytest.mark.service("backend")
def test_cors_preflight(http: Http, opscheck_config: Settings) -> None:
    skip_unless_configured(skipped_for(opscheck_config, "auth.login_path"))
    assert opscheck_config.auth is not None
    origin = (opscheck_config.auth.origin or opscheck_config.frontend_url or "").rstrip("/")
    if not origin:
        pytest.skip("not configured: auth.origin (or frontend_url)")
    site = http.backend
    if probe.same_origin(origin, site.base_url):
        pytest.skip(f"the frontend shares the backend's origin {origin}: browsers send no preflight")
    finding = probe.cors_preflight(site, opscheck_config.auth.login_path, origin)
    expect(finding)
