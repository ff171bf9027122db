"""Values the sweep reads from a container's environment are secrets for the whole sweep: a backend's
SECRET_KEY and POSTGRES_PASSWORD printed by another container, or cut short in the backend's own crash log,
are shown nowhere; an access-log line stays as it is."""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

import pytest
from leakcheck import REPORTS, leaks, run_sweep

STACK = """
name: {name}
services:
  backend:
    image: ${{BUSYBOX}}
    network_mode: none
    environment:
      SECRET_KEY: "{secret_key}"
      POSTGRES_PASSWORD: "{db_password}"
      POSTGRES_PASSWORD_FILE: /run/secrets/not-a-secret
      PIN_SECRET: "{pin}"
      REDIS_PASSWORD: "{short}"
      DOMAIN: localhost
    command: ["sh", "-c", {backend}]
  worker:
    image: ${{BUSYBOX}}
    network_mode: none
    command: ["sh", "-c", {worker}]
"""


@pytest.mark.docker
def test_container_secrets_are_secrets_for_the_sweep(pytester: pytest.Pytester, compose_stack: Any) -> None:
    secret_key = f"sk{secrets.token_hex(20)}"
    db_password = f"dbpw{secrets.token_hex(12)}"
    access = '"POST /api/v1/login/access-token HTTP/1.1" 500'
    # The backend's own log cuts the key short (the container's own scrub matches whole values only); the
    # worker, which has neither variable, prints both whole.
    backend = (f"echo 'Traceback (most recent call last):'; echo \"settings error input_value={{'cfg': "
               f"'{secret_key[:9]}...{secret_key[-22:]}'}}\"; echo '{access}'; sleep 3600")
    # Digits only and short: secrets all the same, masked where they stand as a word or a value.
    pin, short = str(secrets.randbelow(900000) + 100000), f"R{secrets.token_hex(2)}"
    worker = (f"echo 'FATAL: cannot connect with {db_password} and {secret_key}'; "
              f"echo 'ERROR: pin {pin} refused, redis password={short}'; sleep 3600")
    name = f"opsleak{uuid.uuid4().hex[:6]}"
    compose_stack(STACK.format(name=name, secret_key=secret_key, db_password=db_password, pin=pin, short=short,
                               backend=json.dumps(backend), worker=json.dumps(worker)), name)
    config = (f'compose_project = "{name}"\ntimeout = 5\n'
              'required_env = { backend = ["SECRET_KEY", "POSTGRES_PASSWORD", "DOMAIN"] }\n')
    _, found, outputs = run_sweep(pytester, config, "stack.logs_clean or stack.required_env")
    record = found["stack.logs_clean"]
    assert record["outcome"] == "failed"
    logs = json.dumps(record["evidence"])
    assert "FATAL: cannot connect with *** and ***" in logs
    assert "input_value={'cfg': '***...***'}" in logs  # a cut head of 8 or more is masked too
    assert "ERROR: pin *** refused, redis password=***" in logs
    assert not leaks(pin, outputs.texts) and not leaks(short, outputs.texts)
    outputs.require(*REPORTS)
    outputs.assert_absent(secret_key, "SECRET_KEY")
    outputs.assert_absent(db_password, "POSTGRES_PASSWORD")
    outputs.assert_present(access, "out.json", "opscheck-report.html")


def test_which_container_variables_are_secrets() -> None:
    from pytest_opscheck.probes.resource.secret_env import secret_values

    env = {
        "SECRET_KEY": "k" * 10 + "PLANTED1",
        "JWT_SECRET": "changethis",  # a placeholder is no secret (and masking it would hide the word)
        "POSTGRES_PASSWORD": "pgPLANTED2",
        "POSTGRES_PASSWORD_FILE": "/run/secrets/pg",
        "ACCESS_TOKEN_EXPIRE_MINUTES": "11520",
        "AUTH_ENABLED": "true",
        "SSH_AUTH_SOCK": "/tmp/agent.sock",
        "DATABASE_URL": "postgresql://app:urlPLANTED3@db:5432/app?sslmode=disable",
        "SENTRY_DSN": "https://dsnPLANTED4@o1.ingest.sentry.io/5",
        "WEBHOOK_URL": "https://hooks.example.test/x?token=qryPLANTED5&team=ops",
        "FRONTEND_URL": "http://localhost:5173",
        "DOMAIN": "localhost",
    }
    assert secret_values(env) == {"kkkkkkkkkkPLANTED1", "pgPLANTED2", "urlPLANTED3", "dsnPLANTED4", "qryPLANTED5"}
