#!/usr/bin/env bash
# Install everything pushpop needs on a Debian machine: PostgreSQL server (for the
# postgres store, the tests and the benchmarks), docker-compose (only to validate
# docker-compose.yml), and the Python package with its dev/bench extras.
# Idempotent: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql postgresql-contrib)
command -v pgbench >/dev/null 2>&1 || need_apt+=(postgresql-client)
command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
command -v go >/dev/null 2>&1 || need_apt+=(golang-go)
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "setup: installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # the package's post-install starts a cluster when it can; our tests make their own
    $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
stamp=".cache/setup.stamp"
mkdir -p .cache
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || ! "$PY" -c "import actor_service, api, load_tests" 2>/dev/null; then
    echo "setup: installing the pushpop Python package (editable, with dev and bench extras)"
    "$PY" -m pip install --disable-pip-version-check -q -e '.[dev]'
    touch "$stamp"
fi
echo "setup: ready"
