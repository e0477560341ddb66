#!/usr/bin/env bash
# The main job on the small embedded default. Sets up .venv when needed
# (idempotent), then runs the environment report.
#   tools/demo.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup_env.sh"
cd "$root"
exec "$root/.venv/bin/python" -m r2o_mm.env
