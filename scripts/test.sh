#!/usr/bin/env bash
# The whole test suite. Installs what is missing first (scripts/setup.sh), builds
# the Dapr binaries when absent (cached per version), then runs pytest: the tests
# start their own throwaway PostgreSQL cluster, servers and sidecars on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build_dapr.sh
bash scripts/k8s_tools.sh >/dev/null  # kubeconform + schema sources for deploy/k8s
python3 -m ruff check .
python3 -m pytest -ra "$@"
