#!/usr/bin/env bash
# The test suite: sets up .venv when needed (idempotent), then runs pytest.
#   tools/run_tests.sh [pytest options]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup_env.sh"
cd "$root"
exec "$root/.venv/bin/python" -m pytest "$@"
