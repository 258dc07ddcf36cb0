#!/usr/bin/env bash
# Install what one of the README's commands needs, and nothing more.
#
#   scripts/setup.sh run    the service: a virtual environment in .venv with pushpop
#   scripts/setup.sh test   + PostgreSQL server and client, docker-compose (to validate
#                           docker-compose.yml), Go (to build daprd), the dev/bench extras
#
# Debian's python3 is externally managed (PEP 668), so nothing is ever pip-installed into
# it: the project lives in .venv, made with `python3 -m venv` (python3-venv is installed
# from Debian when the module is missing). Idempotent: a step that is already done is
# skipped, so a second run takes well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-run}"
case "$mode" in run|test) ;; *) echo "usage: $0 [run|test]" >&2; exit 2 ;; esac

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
BASE_PY="${PYTHON:-python3}"
VENV=".venv"

need_apt=()
# `python3 -m venv` needs ensurepip, which Debian ships in python3-venv
if [ ! -x "$VENV/bin/python" ] && ! "$BASE_PY" -c "import ensurepip, venv" 2>/dev/null; then
    need_apt+=(python3-venv)
fi
if [ "$mode" = test ]; then
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql postgresql-contrib)
    command -v pgbench >/dev/null 2>&1 || need_apt+=(postgresql-client)
    command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
    command -v go >/dev/null 2>&1 || need_apt+=(golang-go)
    # the throughput benchmark's load generator (it falls back to a slower Python loop)
    command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
    # the browser tests (tests/integration/test_docs_offline.py) drive Debian's Chromium
    # through Playwright: no browser download
    [ -x /usr/bin/chromium ] || need_apt+=(chromium)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "setup: installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # the server package's post-install starts a cluster when it can; our tests make their own
    $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating the virtual environment $VENV (from $("$BASE_PY" -c 'import sys; print(sys.executable)'))"
    "$BASE_PY" -m venv "$VENV"
fi

extras=""
[ "$mode" = test ] && extras="[dev]"
stamp="$VENV/.pushpop-$mode.stamp"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing pushpop$extras into $VENV (editable)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e ".$extras"
    touch "$stamp"
    # the test install is a superset of the run install
    [ "$mode" = test ] && touch "$VENV/.pushpop-run.stamp"
fi
if [ "$mode" = test ]; then
    # the Python client (clients/python, its own distribution): editable, for its tests
    client_stamp="$VENV/.pushpop-client.stamp"
    if [ ! -f "$client_stamp" ] || [ clients/python/pyproject.toml -nt "$client_stamp" ]; then
        echo "setup: installing pushpop-client (clients/python) into $VENV (editable)"
        "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e clients/python
        touch "$client_stamp"
    fi
fi
echo "setup: ready ($mode; $VENV/bin/python)"
