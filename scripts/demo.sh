#!/usr/bin/env bash
# The demo in one command, on a fresh Debian machine (as root) or a laptop with PostgreSQL's server installed:
# installs what is missing, starts the bundled demo target with one fault, sweeps it, stops everything.
#   bash scripts/demo.sh [--fault none|db-down|crash-loop|broken-login|missing-migration|ws-refused|deeplinks-404]
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
python -m pip install -q --disable-pip-version-check -e '.[demo]'
exec python demo/run.py "$@"
