#!/usr/bin/env bash
# Pretraining under Slurm: one task per GPU (or per slot of a CPU node),
# mmengine's slurm launcher.
#
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG TASKS [train.py options]
#
# Outside an allocation it starts the job itself (srun -p PARTITION). Inside
# one (the batch script of the README, or salloc) it runs one job step on
# that allocation, with the allocation's nodes and tasks per node; PARTITION
# and JOB_NAME are then labels only.
# Environment:
#   GPUS_PER_NODE   GPUs (= tasks) per node, default 8; 0 for CPU nodes: no
#                   GRES is asked and TASKS_PER_NODE tasks run per node (default 1);
#                   a partition without GPUs and GPUS_PER_NODE > 0 is one line
#   CPUS_PER_TASK   default 8 (1 on CPU nodes)
#   PORT            the rendezvous port on the first node (default 29500)
#   SRUN_ARGS       more srun options
# A requeued job (after a preemption: PreemptionHook saves last.pth and runs
# scontrol requeue) continues by itself: --resume is always passed. Run
# tools/setup_env.sh once on a login node first (the .venv lives on the shared
# file system).
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then  # usage, before any set-up
  sed -n '2,/^set /p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0
fi
if [[ $# -lt 4 ]]; then
  echo "usage: $0 PARTITION JOB_NAME CONFIG TASKS [train.py options]" >&2; exit 2
fi
partition=$1; job=$2; config=$3; tasks=$4; shift 4
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MASTER_PORT=${PORT:-29500}
python="${PYTHON:-$root/.venv/bin/python}"
[[ " $* " == *" --resume"* ]] || set -- "$@" --resume

# shellcheck source=tools/slurm_step.sh
source "$root/tools/slurm_step.sh"
slurm_step "$partition" "$job" "$tasks"
# Config and dataset are checked once, here, before srun starts any task: a
# bad value or a missing folder ends with one line.
"$python" "$root/tools/train.py" "$config" --check-only --check-world-size "$tasks" "$@"
exec "${step[@]}" "$python" -u "$root/tools/train.py" "$config" --launcher slurm "$@"
