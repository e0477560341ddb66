#!/usr/bin/env bash
# Transfer a pretrained R2O checkpoint to the paper's downstream benchmarks.
#
#   tools/transfer.sh CHECKPOINT [GPUS] [TASKS...]
#
# GPUS: processes per node (default: the GPUs torch sees, at least 1).
# TASKS: coco_1x voc cityscapes (default), coco_2x, coco_mocov2_1x.
# Exports the online encoder once (WORK_DIR/backbone.pth), then trains and
# tests each task with the same torchrun launcher as pretraining (NNODES,
# NODE_RANK, MASTER_ADDR, PORT for several nodes). A task that fails is
# recorded and the next one runs; a task whose metrics.json exists is skipped,
# so re-running resumes the list. Environment:
#   WORK_DIR     output folder (default work_dirs/transfer/<checkpoint name>)
#   CFG_OPTIONS  extra --cfg-options for every task (space-separated key=value)
#   R2O_SKIP_SETUP=1  skip the idempotent environment check
set -uo pipefail
if [[ $# -lt 1 ]]; then
  echo "usage: $0 CHECKPOINT [GPUS] [TASKS...]" >&2; exit 2
fi
checkpoint=$1; shift
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ -n "${R2O_SKIP_SETUP:-}" ]] || "$root/tools/setup_env.sh" || exit 1
python="${PYTHON:-$root/.venv/bin/python}"
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then
  gpus=$1; shift
else
  gpus=$("$python" -c 'import torch; print(max(torch.cuda.device_count(), 1))')
fi
tasks=("$@"); [[ ${#tasks[@]} -gt 0 ]] || tasks=(coco_1x voc cityscapes)
if [[ ! -f "$checkpoint" ]]; then
  echo "checkpoint $checkpoint: no such file" >&2; exit 2
fi
name="$(basename "${checkpoint%.*}")"
out="${WORK_DIR:-work_dirs/transfer/$name}"
mkdir -p "$out"

if [[ ! -f "$out/backbone.pth" || "$checkpoint" -nt "$out/backbone.pth" ]]; then
  "$python" "$root/tools/export_backbone.py" "$checkpoint" "$out/backbone.pth" || exit 1
fi

declare -a summary
for task in "${tasks[@]}"; do
  if [[ -f "$out/$task/metrics.json" ]]; then
    summary+=("$task: done earlier ($out/$task/metrics.json)"); continue
  fi
  echo "=== $task: $gpus process(es), output $out/$task"
  # shellcheck disable=SC2086
  args=("$root/tools/transfer_run.py" "$task" --backbone "$out/backbone.pth" --work-dir "$out/$task"
        --pretrained "$checkpoint"
        ${CFG_OPTIONS:+--cfg-options $CFG_OPTIONS})
  if [[ "$gpus" -gt 1 || "${NNODES:-1}" -gt 1 ]]; then
    "$python" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
      --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
      --nproc_per_node="$gpus" "${args[@]}" --launcher pytorch
  else
    "$python" "${args[@]}"
  fi
  status=$?
  if [[ $status -eq 0 ]]; then
    summary+=("$task: ok ($out/$task/metrics.json)")
  else
    mkdir -p "$out/$task"; echo "exit status $status" > "$out/$task/FAILED"
    summary+=("$task: FAILED with status $status (log under $out/$task)")
  fi
done
echo "=== summary"
printf '%s\n' "${summary[@]}"
grep -q FAILED <<< "${summary[*]}" && exit 1 || exit 0
