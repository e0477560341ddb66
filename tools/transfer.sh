#!/usr/bin/env bash
# Transfer a pretrained R2O checkpoint to the paper's downstream benchmarks.
#
#   tools/transfer.sh CHECKPOINT [GPUS] [TASKS...]
#
# GPUS: processes per node (default: the GPUs torch sees, at least 1).
# TASKS: coco_1x voc cityscapes (default), coco_2x, coco_mocov2_1x; ImageNet through
#        mmpretrain: imagenet_linear, imagenet_semi_1pct, imagenet_semi_10pct.
#
# A pre-flight in one process comes first (r2o_mm/transfer/preflight.py): it
# hashes the checkpoint, checks every task's config and dataset (one line per
# problem; such a task is not started, the others are), exports the online
# encoder to WORK_DIR/backbone.pth when it is not already the export of this
# very checkpoint, and skips a task whose metrics.json names the same
# checkpoint sha256 and config. A metrics.json from another checkpoint or
# config stops everything with one line. Each task then trains and tests with
# the same torchrun launcher as pretraining (NNODES, NODE_RANK, MASTER_ADDR,
# PORT for several nodes: before each task every node must arrive within
# R2O_NODE_TIMEOUT seconds, default 600); its output is kept in WORK_DIR/TASK/transfer.log;
# a task that fails is recorded (TASK/FAILED) and the next one runs.
# Under Slurm, tools/slurm_transfer.sh runs the same with each task as one job
# step of GPUS tasks (srun, mmengine's slurm launcher).
# Environment:
#   WORK_DIR     output folder (default work_dirs/transfer/<checkpoint's folder>/
#                <checkpoint name>-<first 8 hex digits of its sha256>)
#   BACKBONE     where the exported encoder goes (default WORK_DIR/backbone.pth): fine-tuning
#                seeds in work dirs of their own share one export (tools/reproduce.py)
#   CFG_OPTIONS  extra --cfg-options for every task (space-separated key=value)
#   R2O_SKIP_SETUP=1  skip the idempotent environment check
set -uo pipefail
usage() { sed -n '2,/^set /p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; }
if [[ $# -lt 1 ]]; then
  echo "usage: $0 CHECKPOINT [GPUS] [TASKS...]  (--help for more)" >&2; exit 2
fi
if [[ "$1" == "-h" || "$1" == "--help" ]]; then usage; exit 0; fi
checkpoint=$1; shift
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ ! -f "$checkpoint" ]]; then
  echo "checkpoint $checkpoint: no such file" >&2; exit 2
fi
[[ -n "${R2O_SKIP_SETUP:-}" ]] || "$root/tools/setup_env.sh" || exit 1
python="${PYTHON:-$root/.venv/bin/python}"
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then
  gpus=$1; shift
else
  gpus=$("$python" -c 'import torch; print(max(torch.cuda.device_count(), 1))')
fi
tasks=("$@"); [[ ${#tasks[@]} -gt 0 ]] || tasks=(coco_1x voc cityscapes)
slurm_partition=${R2O_SLURM_PARTITION:-}  # set by tools/slurm_transfer.sh
per_node=$gpus
if [[ -n "$slurm_partition" ]]; then
  # shellcheck source=tools/slurm_step.sh
  source "$root/tools/slurm_step.sh"
  export MASTER_PORT=${PORT:-29500}
  # GPUS is the step's task count; the pre-flight checks one node's share.
  [[ "${GPUS_PER_NODE:-8}" -eq 0 || "$gpus" -le "${GPUS_PER_NODE:-8}" ]] || per_node=${GPUS_PER_NODE:-8}
fi

# shellcheck disable=SC2086
plan="$("$python" -m r2o_mm.transfer.preflight "$checkpoint" --gpus "$per_node" --nnodes "${NNODES:-1}" \
  --tasks "${tasks[@]}" ${WORK_DIR:+--work-dir "$WORK_DIR"} ${BACKBONE:+--backbone "$BACKBONE"} ${CFG_OPTIONS:+--cfg-options $CFG_OPTIONS})"
status=$?
[[ $status -eq 0 ]] || exit "$status"

declare -a summary
out=""
record_result() {  # TASK EXIT_CODE
  if [[ $2 -eq 0 ]]; then
    summary+=("$1: ok ($out/$1/metrics.json)")
  else
    echo "exit status $2; log: $out/$1/$log" > "$out/$1/FAILED"
    summary+=("$1: FAILED with status $2 (log: $out/$1/$log)")
  fi
}
while IFS=$'\t' read -r -u 3 verdict task detail; do
  case "$verdict" in
    WORK_DIR) out=$task ;;
    DONE) summary+=("$task: done earlier ($detail)") ;;
    FAILED) summary+=("$task: FAILED in the pre-flight: $detail") ;;
    RUN)
      echo "=== $task: $gpus process(es), output $out/$task"
      mkdir -p "$out/$task"; rm -f "$out/$task/FAILED"
      log=transfer.log; [[ "${NODE_RANK:-0}" == 0 ]] || log="transfer_node${NODE_RANK}.log"
      # shellcheck disable=SC2086
      args=("$root/tools/transfer_run.py" "$task" --backbone "${BACKBONE:-$out/backbone.pth}" --work-dir "$out/$task"
            --pretrained "$checkpoint" ${CFG_OPTIONS:+--cfg-options $CFG_OPTIONS})
      if [[ -n "$slurm_partition" ]]; then
        slurm_step "$slurm_partition" "transfer-$task" "$gpus"
        "${step[@]}" "$python" -u "${args[@]}" --launcher slurm 2>&1 | tee "$out/$task/$log"
        code=${PIPESTATUS[0]}
        record_result "$task" "$code"; continue
      fi
      if [[ "${NNODES:-1}" -gt 1 ]] && ! "$python" -m r2o_mm.utils.dist "${MASTER_ADDR:-127.0.0.1}" \
          "${PORT:-29500}" "$NNODES" "${NODE_RANK:-0}" "${R2O_NODE_TIMEOUT:-600}" --tool transfer.sh; then
        echo "exit status 1; not all nodes arrived" > "$out/$task/FAILED"
        summary+=("$task: FAILED: not all ${NNODES} nodes arrived within ${R2O_NODE_TIMEOUT:-600} s"); continue
      fi
      if [[ "$gpus" -gt 1 || "${NNODES:-1}" -gt 1 ]]; then
        "$python" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
          --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
          --nproc_per_node="$gpus" "${args[@]}" --launcher pytorch 2>&1 | tee "$out/$task/$log"
      else
        "$python" "${args[@]}" 2>&1 | tee "$out/$task/$log"
      fi
      code=${PIPESTATUS[0]}
      record_result "$task" "$code" ;;
  esac
done 3<<< "$plan"
echo "=== summary"
printf '%s\n' "${summary[@]}"
# The full logs (environment, config) are mmengine's, under each task's work dir; the next command collects.
grep -qE ': (ok|done earlier)' <<< "${summary[*]}" &&
  echo "next: .venv/bin/python tools/collect_results.py $out  (tables and figures under $out/results)"
grep -q FAILED <<< "${summary[*]}" && exit 1 || exit 0
