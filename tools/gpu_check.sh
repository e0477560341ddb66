#!/usr/bin/env bash
# Ten minutes that tell whether a GPU machine runs r2o_mm as the CPU does.
# Run it on one GPU node before booking a cluster:
#
#   tools/gpu_check.sh [--minutes 10] [--out DIR] [--benchmarks]
#   tools/gpu_check.sh --device cpu --quick     # the rehearsal (the test suite runs it)
#
# Phases, each one PASS/FAIL/SKIP line: environment (GPU, NCCL, mmcv's CUDA
# ops; RoIAlign and NMS equal on GPU and CPU), numerics (one R2O step on the GPU
# against the CPU), speed (R2O vs BYOL, fp32 and bf16, K-means, data loading),
# distributed (all GPUs through tools/dist_train.sh), transfer (FCN and Mask
# R-CNN through tools/transfer.sh), learning (the demo's question with the
# budget left). Then a verdict line; report.md and report.json in --out
# (default work_dirs/gpu_check/<time>); --benchmarks also writes the machine's
# section of results/benchmarks.md. Exit status 0 when no phase failed.
#
# The Python environment: .venv (tools/setup_env.sh, with mmcv's CUDA ops when
# a GPU is visible) unless PYTHON names another interpreter with the stack. On
# a machine without network or OpenMMLab packages (another torch, another
# Python), R2O_WHEELS=DIR installs the wheels that tools/gpu_bundle.sh
# collected into R2O_SITE (default /tmp/r2o_site) and builds mmcv there with
# all cores for the visible GPU; the build time counts against the budget
# only in wall time, not in the phases' shares.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then  # usage, before any set-up
  sed -n '2,/^set /p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [[ -n "${R2O_WHEELS:-}" ]]; then
  python="${PYTHON:-python3}"
  "$root/tools/gpu_bundle.sh" install "$R2O_WHEELS" "$python"
  export PYTHONPATH="${R2O_SITE:-/tmp/r2o_site}:$root${PYTHONPATH:+:$PYTHONPATH}"
elif [[ -n "${PYTHON:-}" ]]; then
  python="$PYTHON"
else
  [[ -n "${R2O_SKIP_SETUP:-}" ]] || "$root/tools/setup_env.sh"
  python="$root/.venv/bin/python"
fi
export PYTHON="$python"
exec "$python" -m r2o_mm.gpu_check "$@"
