#!/usr/bin/env bash
# The main job on the small embedded default, on data that needs no download:
# pretrain R2O and BYOL over two pretraining seeds each, follow the mask
# quality, probe the frozen encoders, write the results tables and figures
# (--size full: three seeds, and fine-tuning through mmseg and mmdet;
# --size learn: does pretraining learn? three seeds per method, k-NN top-1
# and mBO every few epochs, learning.json and the learning curves).
# Sets up .venv first when needed (idempotent).
#   tools/demo.sh [--out work_dirs/demo] [--size quick|full|learn|test|learn_test] [--pretrain-seeds N]
#                 [--seeds N] [--jobs N]
# All options: .venv/bin/python tools/demo.py --help
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then  # usage, before any set-up
  sed -n '2,/^set /p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup_env.sh"
cd "$root"
exec "$root/.venv/bin/python" "$root/tools/demo.py" "$@"
