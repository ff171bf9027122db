#!/usr/bin/env bash
# The whole test suite, with all its set-up, on a fresh Debian machine (run as root) or a developer's laptop.
# Installs what is missing (Docker engine, Compose v2, PostgreSQL, busybox, Chromium, monitoring-plugins,
# the Python dependencies), then runs lint, types and the tests. The tests start a Docker engine and a
# throwaway PostgreSQL cluster themselves when none is running, and stop what they started.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dockerd >/dev/null || need+=(docker.io)
[ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql postgresql-contrib)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v chromium >/dev/null || need+=(chromium)
[ -x /usr/lib/nagios/plugins/check_http ] || need+=(monitoring-plugins-basic monitoring-plugins-standard)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing system packages: ${need[*]} (install them with apt-get as root)" >&2
    exit 1
  fi
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${need[@]}" >/dev/null
fi

python -m pip install -q --disable-pip-version-check -e '.[test]'

ruff check .
mypy pytest_opscheck
python -m pytest tests -p no:cacheprovider "$@"
