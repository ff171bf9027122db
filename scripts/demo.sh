#!/usr/bin/env bash
# The demo in one command, on a fresh Debian machine (as root) or a laptop with PostgreSQL's server installed:
# installs what is missing, starts the bundled demo target with one fault, sweeps it, stops everything.
#   bash scripts/demo.sh [--fault none|db-down|crash-loop|broken-login|missing-migration|ws-refused|deeplinks-404]
# The demo's Python packages go into a virtualenv of its own, once (.venv-demo, or $OPSCHECK_DEMO_VENV), never
# into the Python that happens to be active; it sees that Python's packages, so nothing already there is
# downloaded again.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "the demo needs PostgreSQL's server: apt-get install postgresql postgresql-contrib (as root)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 postgresql postgresql-contrib >/dev/null
fi
venv="${OPSCHECK_DEMO_VENV:-.venv-demo}"
python="$venv/bin/python"
if ! "$python" -c "import pytest_opscheck, uvicorn, starlette, aiosmtpd, alembic, sqlalchemy" >/dev/null 2>&1; then
  echo "installing the demo into $venv (once) …" >&2
  if ! python3 -m venv --system-site-packages "$venv" >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "the demo needs Python's venv module: apt-get install python3-venv (as root)" >&2
      exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 python3-venv >/dev/null
    python3 -m venv --system-site-packages "$venv"
  fi
  "$python" -m pip install -q --disable-pip-version-check -e '.[demo]'
fi
exec "$python" demo/run.py "$@"
