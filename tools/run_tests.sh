#!/usr/bin/env bash
# The test suite: sets up .venv when needed (idempotent), then runs pytest.
#   tools/run_tests.sh [pytest options]     e.g. tests/engine -x -k schedule
# pytest's own help: .venv/bin/python -m pytest --help
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then  # usage, before any set-up
  sed -n '2,/^set /p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup_env.sh"
cd "$root"
exec "$root/.venv/bin/python" -m pytest "$@"
