#!/usr/bin/env bash
# Transfer under Slurm: tools/transfer.sh (the same pre-flight in one process,
# the same work dirs keyed by the checkpoint's sha256, the same records) with
# each task run as one job step of TASKS processes through srun (mmengine's
# slurm launcher), one per GPU.
#
#   tools/slurm_transfer.sh PARTITION CHECKPOINT TASKS [BENCHMARKS...]
#
# BENCHMARKS: as for tools/transfer.sh (coco_1x voc cityscapes by default).
# Inside an allocation (sbatch, salloc) the steps run on it and PARTITION is a
# label; outside, each is its own srun -p PARTITION. GPUS_PER_NODE (default 8;
# 0 for CPU nodes, then TASKS_PER_NODE per node), CPUS_PER_TASK, SRUN_ARGS and
# PORT as for tools/slurm_train.sh; WORK_DIR and CFG_OPTIONS as for
# tools/transfer.sh.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then  # usage, before any set-up
  sed -n '2,/^set /p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0
fi
if [[ $# -lt 3 ]]; then
  echo "usage: $0 PARTITION CHECKPOINT TASKS [BENCHMARKS...]  (--help for more)" >&2; exit 2
fi
partition=$1; shift
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
R2O_SLURM_PARTITION="$partition" exec "$root/tools/transfer.sh" "$@"
