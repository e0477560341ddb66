# Sourced by tools/slurm_train.sh and tools/slurm_transfer.sh (not run by itself):
#   slurm_step PARTITION JOB_NAME TASKS   ->  the array "step", an srun command line.
# Inside an allocation (an sbatch script, salloc): one step over it (its nodes,
# GRES and tasks per node). Outside: srun -p PARTITION, with --gres=gpu:N when
# GPUS_PER_NODE (default 8) > 0 and the partition has GPUs (one line and exit 2
# when it has none); GPUS_PER_NODE=0: CPU nodes, no GRES asked, TASKS_PER_NODE
# tasks per node (default 1). CPUS_PER_TASK: default 8 (1 on CPU nodes).
slurm_step() {
  local partition=$1 job=$2 tasks=$3 gpus_per_node=${GPUS_PER_NODE:-8} gres
  if [[ -n "${SLURM_JOB_ID:-}" ]]; then
    step=(srun --ntasks="$tasks" --kill-on-bad-exit=1)
  elif [[ "$gpus_per_node" -gt 0 ]]; then
    gres="$(sinfo -h -p "$partition" -o %G 2>/dev/null | sort -u | tr '\n' ' ')"
    if [[ "$gres" != *gpu* ]]; then
      echo "$(basename "$0"): partition $partition has no GPU GRES (sinfo: ${gres:-nothing});" \
        "for CPU nodes set GPUS_PER_NODE=0" >&2
      exit 2
    fi
    step=(srun -p "$partition" --job-name="$job" --gres="gpu:$gpus_per_node" --ntasks="$tasks"
          --ntasks-per-node="$gpus_per_node" --cpus-per-task="${CPUS_PER_TASK:-8}" --kill-on-bad-exit=1)
  else
    step=(srun -p "$partition" --job-name="$job" --ntasks="$tasks" --ntasks-per-node="${TASKS_PER_NODE:-1}"
          --cpus-per-task="${CPUS_PER_TASK:-1}" --kill-on-bad-exit=1)
  fi
  # shellcheck disable=SC2206  # SRUN_ARGS: extra srun options, one word each
  step+=(${SRUN_ARGS:-})
}
