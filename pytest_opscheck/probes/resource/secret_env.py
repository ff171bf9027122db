"""Which values of a container's environment are secrets for the rest of the sweep: those of secret-named
variables (passwords, keys, tokens), and the password or secret query values inside a URL-valued one, never
the paths, hosts, users, flags or durations that a secret-looking name also covers, nor a placeholder.
A secret of any length is one: digits only (`PIN=4711`) and short ones too; the redactor decides how far a
short one is masked (see `pytest_opscheck.redact`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

from ..secrets import PLACEHOLDERS

SECRET_NAME = re.compile(r"PASS|PWD|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE|SALT|DSN|AUTH", re.IGNORECASE)
# A secret-looking name that holds no secret: where one is, who uses it, whether it is on, how long it lasts.
SETTING_NAME = re.compile(
    r"(?:_FILE|_PATH|_DIR|_HOST|_HOSTNAME|_PORT|_USER|_USERNAME|_NAME|_ID|_ENABLED|_REQUIRED|_EXPIRE\w*|_TTL"
    r"|_MINUTES|_SECONDS|_HOURS|_DAYS|_ALGORITHM|_TYPE|_LENGTH|_HEADER|_SOCK|_METHOD|_PROVIDER|_URL|_URI)$",
    re.IGNORECASE,
)
URL_NAME = re.compile(r"(?:_URL|_URI|_DSN|^DSN)$", re.IGNORECASE)
SECRET_PARAM = re.compile(r"pass|pwd|secret|token|ticket|sig|signature|credential|key|auth|jwt", re.IGNORECASE)
# Values that say whether something is on, not what the secret is.
_PLAIN = re.compile(r"true|false|yes|no|on|off|none|null|disabled?|enabled?", re.IGNORECASE)


def _worth(value: str) -> bool:
    value = value.strip()
    return bool(value) and value.lower() not in PLACEHOLDERS and not _PLAIN.fullmatch(value)


def secret_values(env: Mapping[str, str]) -> set[str]:
    """The secret values among a container's environment variables (`NAME` -> value)."""
    found: set[str] = set()
    for name, value in env.items():
        if "://" in value and (URL_NAME.search(name) or SECRET_NAME.search(name)):
            found |= _in_url(name, value)
        elif SECRET_NAME.search(name) and not SETTING_NAME.search(name):
            found.add(value)
    return {v for v in found if _worth(v)}


def _in_url(name: str, value: str) -> set[str]:
    """The password of a URL's userinfo (the whole userinfo of a DSN, whose key it is) and its secret query values."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return set()
    found = set()
    if parts.password:
        found |= {parts.password, unquote(parts.password)}
    elif parts.username and "DSN" in name.upper():
        found |= {parts.username, unquote(parts.username)}
    found |= {v for k, v in parse_qsl(parts.query) if SECRET_PARAM.search(k)}
    return found
