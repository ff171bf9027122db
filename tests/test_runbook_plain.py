"""A runbook as people write it (issue 26, item 7): sub-headings instead of bold labels, and the commands people
type for a diagnosis (`pg_isready`, `psql -c 'select 1'`, `curl -f …/health`), however they reach the container
(sudo, VAR=value, docker compose exec with options, docker exec, kubectl exec). And a runbook coverage cannot
read says what format it reads."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import pytest

from pytest_opscheck.catalogue import NO_DIAGNOSIS
from pytest_opscheck.catalogue_lines import RunbookLine, automated_by, coverage_by_line
from pytest_opscheck.model import CheckMeta, Severity
from pytest_opscheck.runbook.parse import parse_runbook

# (command as written, the check that automates it)
COMMANDS = [
    ("pg_isready", "db.reachable"),
    ("pg_isready -h localhost -p 5432 -U app", "db.reachable"),
    ("psql -c 'select 1'", "db.reachable"),
    ('psql -h db -U postgres -d app -c "SELECT 1;"', "db.reachable"),
    ("curl -f http://localhost:8000/health", "backend.health"),
    ("curl -fsS https://api.example.com/api/v1/utils/health-check/", "backend.health"),
    ("wget -qO- http://localhost:3001/health", "backend.health"),
    ("alembic current", "db.migrations_current"),
    ("npx prisma migrate status", "db.migrations_current"),
    ("df -h /var/lib/docker", "host.disk_free"),
    ("free -m", "host.memory_free"),
    ("openssl s_client -connect app.example.com:443 -servername app.example.com", "tls.cert_expiry"),
    ("swaks --to ops@example.com --server smtp.example.com:587", "email.smtp_session"),
    ("wscat -c ws://localhost:3001/realtime", "ws.handshake"),
]
# How people reach the process the command runs in.
PREFIXES = [
    "", "sudo ", "PGPASSWORD=$POSTGRES_PASSWORD ", "docker compose exec db ", "docker compose exec -T db ",
    "docker-compose exec --user postgres db ", "docker compose exec -u=root -e X=1 --workdir /app backend ",
    "docker exec -it app-db-1 ", "kubectl exec -n prod deploy/api -- ",
]
IDS = sorted({check for _, check in COMMANDS} | {"stack.services_running", "api.latency"})
METAS = [CheckMeta(check_id, Severity.P2, "") for check_id in IDS]


@pytest.mark.parametrize(("prefix", "command"), itertools.product(PREFIXES, COMMANDS),
                         ids=lambda v: v if isinstance(v, str) else v[0][:30])
def test_the_commands_people_write_are_automated_by_their_check(prefix: str, command: tuple[str, str]) -> None:
    text, check = command
    assert check in automated_by(RunbookLine("diagnosis", prefix + text), METAS)


@pytest.mark.parametrize("text", ["psql -c 'select * from orders'", "curl http://localhost:8000/api/items",
                                  "docker compose exec db bash", "vim .env", "select 1"])
def test_other_commands_are_not_taken_for_them(text: str) -> None:
    assert not {"db.reachable", "backend.health"} & set(automated_by(RunbookLine("diagnosis", text), METAS))


RUNBOOK = """\
# Runbook

## Database down

### Symptoms
The API answers 500 on every page.

### Diagnosis

```bash
# is it up?
docker compose exec -T db pg_isready -U postgres
psql -h localhost -U app -c 'select 1'
curl -f http://localhost:8000/health
```

### Resolution

1. Restart it: `docker compose restart db`
"""


def test_a_runbook_with_sub_headings_and_no_bold_labels_is_covered(tmp_path: Path) -> None:
    path = tmp_path / "runbook.md"
    path.write_text(RUNBOOK)
    listing = coverage_by_line(parse_runbook(path), METAS)
    assert listing[0].startswith("Database down (#database-down): ")
    assert "    docker compose exec -T db pg_isready -U postgres  # is it up?  -> db.reachable" in listing
    assert "    psql -h localhost -U app -c select 1  -> db.reachable" in listing or \
        "    psql -h localhost -U app -c 'select 1'  -> db.reachable" in listing
    assert "    curl -f http://localhost:8000/health  -> backend.health" in listing
    assert listing[-1] == "runbook lines: 3 automated, 1 for people (reason given), 0 not automated"


def test_a_runbook_coverage_cannot_read_says_what_format_it_reads(tmp_path: Path) -> None:
    path = tmp_path / "runbook.md"
    path.write_text(textwrap.dedent("""\
        # Runbook

        ## Database down

        Check the database, then restart it:

            pg_isready
        """))
    listing = coverage_by_line(parse_runbook(path), METAS)
    assert listing == [NO_DIAGNOSIS]
    assert "### Diagnosis" in NO_DIAGNOSIS and "**Diagnosis:**" in NO_DIAGNOSIS
