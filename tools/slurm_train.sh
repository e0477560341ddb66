#!/usr/bin/env bash
# Pretraining under Slurm: one task per GPU, mmengine's slurm launcher.
#
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG GPUS [train.py options]
#
# GPUS_PER_NODE (default 8), CPUS_PER_TASK (default 8), SRUN_ARGS and PORT
# (default 29500) come from the environment. Run tools/setup_env.sh once on a
# login node first (the .venv lives on the shared file system).
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then  # usage, before any set-up
  sed -n '2,/^set /p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0
fi
if [[ $# -lt 4 ]]; then
  echo "usage: $0 PARTITION JOB_NAME CONFIG GPUS [train.py options]" >&2; exit 2
fi
partition=$1; job=$2; config=$3; gpus=$4; shift 4
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
gpus_per_node=${GPUS_PER_NODE:-8}
export MASTER_PORT=${PORT:-29500}
python="${PYTHON:-$root/.venv/bin/python}"
# Config and dataset are checked once, on this node, before srun starts any
# task: a bad value or a missing folder ends with one line.
# A requeued job (after preemption: PreemptionHook saves last.pth and runs
# scontrol requeue) must continue by itself: --resume is always passed.
[[ " $* " == *" --resume"* ]] || set -- "$@" --resume
"$python" "$root/tools/train.py" "$config" --check-only "$@"
# shellcheck disable=SC2086
srun -p "$partition" --job-name="$job" --gres="gpu:$gpus_per_node" --ntasks="$gpus" \
  --ntasks-per-node="$gpus_per_node" --cpus-per-task="${CPUS_PER_TASK:-8}" --kill-on-bad-exit=1 \
  ${SRUN_ARGS:-} "$python" -u "$root/tools/train.py" "$config" --launcher slurm "$@"
