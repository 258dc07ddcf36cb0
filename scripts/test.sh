#!/usr/bin/env bash
# The whole test suite. Installs what is missing first (scripts/setup.sh test, into .venv), builds
# the Dapr binaries when absent (cached per version), then runs pytest: the tests
# start their own throwaway PostgreSQL cluster, servers and sidecars on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
bash scripts/build_dapr.sh
bash scripts/k8s_tools.sh >/dev/null  # kubeconform + schema sources for deploy/k8s
.venv/bin/python -m ruff check .
# two workers (PUSHPOP_TEST_WORKERS), each taking whole files: a module's fixtures (its
# servers, its Locust runs) stay in one process, and most tests wait on servers, not CPU
.venv/bin/python -m pytest -ra -n "${PUSHPOP_TEST_WORKERS:-2}" --dist loadfile "$@"
