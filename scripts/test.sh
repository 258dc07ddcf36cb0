#!/usr/bin/env bash
# The whole test suite. Installs what is missing first (scripts/setup.sh), builds
# the Dapr binaries when absent (cached per version), then runs pytest: the tests
# start their own throwaway PostgreSQL cluster, servers and sidecars on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -x scripts/build_dapr.sh ]; then bash scripts/build_dapr.sh; fi
python3 -m ruff check .
python3 -m pytest -ra "$@"
