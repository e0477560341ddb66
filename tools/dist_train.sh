#!/usr/bin/env bash
# Distributed pretraining with torchrun (one node or several).
#
#   tools/dist_train.sh CONFIG GPUS [train.py options]
#
# Several nodes: run the same command on every node with
#   NNODES=<nodes> NODE_RANK=<0..NNODES-1> MASTER_ADDR=<node 0's address> PORT=<free port>
# (PORT and PORT + 1 must be free on node 0; R2O_NODE_TIMEOUT, default 600 s: how
# long the nodes wait for each other before giving up with one line).
# Set R2O_SKIP_SETUP=1 to skip the (idempotent) environment check.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then  # usage, before any set-up
  sed -n '2,/^set /p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0
fi
if [[ $# -lt 2 ]]; then
  echo "usage: $0 CONFIG GPUS [train.py options]" >&2; exit 2
fi
config=$1; gpus=$2; shift 2
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ -n "${R2O_SKIP_SETUP:-}" ]] || "$root/tools/setup_env.sh"
python="${PYTHON:-$root/.venv/bin/python}"
# Config and dataset are checked once, here, before any worker starts: a bad
# value or a missing folder ends with one line and a non-zero exit.
"$python" "$root/tools/train.py" "$config" --check-only --check-processes "$gpus" "$@"
if [[ "${NNODES:-1}" -gt 1 ]]; then
  # Every node must arrive within R2O_NODE_TIMEOUT seconds (default 600), checked
  # on PORT + 1 before torchrun; a missing node ends each waiting one with one line.
  "$python" -m r2o_mm.utils.dist "${MASTER_ADDR:-127.0.0.1}" "${PORT:-29500}" "$NNODES" \
    "${NODE_RANK:-0}" "${R2O_NODE_TIMEOUT:-600}" || exit 1
fi
exec "$python" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
  --nproc_per_node="$gpus" \
  "$root/tools/train.py" "$config" --launcher pytorch "$@"
