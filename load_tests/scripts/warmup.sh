#!/usr/bin/env bash
# The load plan's warm-up step: wait until the API is healthy and ready, then push and
# pop a few hundred items so the first measured requests are not cold ones.
#   ./load_tests/scripts/warmup.sh [--host http://localhost:8000] [--requests 200]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python=python3
cd "$root"
exec "$python" -m load_tests.scripts.warmup "$@"
