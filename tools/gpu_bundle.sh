#!/usr/bin/env bash
# What tools/gpu_check.sh needs on a GPU machine without network whose Python
# has torch but no OpenMMLab packages (e.g. Python 3.12 with its own torch
# and nvcc, and no package registry).
#
#   tools/gpu_bundle.sh collect [DIR] [PYTHON_VERSION]   # here, with the registry
#   tools/gpu_bundle.sh install DIR [PYTHON]             # there (gpu_check.sh does it
#                                                        # when R2O_WHEELS=DIR is set)
#
# collect: downloads into DIR (default .whl, ignored by git) the wheels of
# mmengine, mmdet, mmsegmentation and those of their requirements that such an
# image lacks, for CPython PYTHON_VERSION (default 3.12) on manylinux x86-64,
# pinned by requirements/lock.txt, plus mmcv 2.1.0's source and a setuptools
# that still has pkg_resources (mmcv's setup.py needs it). About 11 MB.
# install: installs them with no index into R2O_SITE (default /tmp/r2o_site)
# and builds mmcv's ops there against that Python's torch, with every core
# (MAX_JOBS) and the CUDA ops for the visible GPUs (nvcc on PATH or CUDA_HOME
# must match torch's CUDA). Nothing is installed into the system's Python.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" || $# -lt 1 ]]; then  # usage, before any set-up
  sed -n '2,/^set /p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[gpu_bundle] %s\n' "$*" >&2; }
PACKAGES=(mmengine mmdet mmsegmentation addict yapf platformdirs termcolor terminaltables pycocotools
          shapely ftfy wcwidth prettytable)

collect() {
  local dir="${1:-$root/.whl}" version="${2:-3.12}" python="${PYTHON:-$root/.venv/bin/python}"
  mkdir -p "$dir"
  local pins=()
  for name in "${PACKAGES[@]}"; do
    pins+=("$(grep -iE "^$name==" "$root/requirements/lock.txt")") ||
      { log "error: $name is not pinned in requirements/lock.txt"; exit 1; }
  done
  "$python" -m pip download --disable-pip-version-check -q --no-deps --only-binary=:all: \
    --python-version "$version" --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any -d "$dir" "${pins[@]}"
  "$python" -m pip download --disable-pip-version-check -q --no-deps --only-binary=:all: -d "$dir" \
    "setuptools<82"
  "$python" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: \
    --no-build-isolation -d "$dir" "mmcv==2.1.0"
  log "$(find "$dir" -maxdepth 1 -type f | wc -l) files, $(du -sh "$dir" | cut -f1) in $dir"
}

install() {
  local dir="$1" python="${2:-${PYTHON:-python3}}" site="${R2O_SITE:-/tmp/r2o_site}"
  [[ -d "$dir" ]] || { log "error: $dir: no such folder (run tools/gpu_bundle.sh collect first)"; exit 1; }
  mkdir -p "$site"
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  if PYTHONPATH="$site" "$python" -c 'import mmcv.ops, mmdet, mmseg' 2>/dev/null; then
    log "the stack in $site imports; nothing to do"; return
  fi
  "$python" -m pip install --disable-pip-version-check -q --no-index --no-deps --no-compile --upgrade \
    --target "$site" "$dir"/*.whl
  local build; build="$(mktemp -d)"
  tar -xzf "$dir"/mmcv-2.1.0.tar.gz -C "$build"
  # The patches tools/setup_env.sh applies (torch >= 2.10 needs C++20; numpy 2).
  sed -i 's/c++17/c++20/g; s/c++14/c++20/g' "$build/mmcv-2.1.0/setup.py"
  sed -i 's/np\.float\b/float/g' "$build/mmcv-2.1.0/mmcv/ops/pixel_group.py"
  if "$python" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
    export FORCE_CUDA=1
    TORCH_CUDA_ARCH_LIST="$("$python" "$root/r2o_mm/utils/cuda_toolkit.py" arch)"
    export TORCH_CUDA_ARCH_LIST
    [[ -n "${CUDA_HOME:-}" ]] || CUDA_HOME="$("$python" "$root/r2o_mm/utils/cuda_toolkit.py" system)"
    [[ -n "$CUDA_HOME" ]] || { log "error: no nvcc of torch's CUDA release found (set CUDA_HOME)"; exit 1; }
    export CUDA_HOME
  fi
  local started=$SECONDS
  log "building mmcv 2.1.0's ops with $(nproc) jobs${FORCE_CUDA:+, CUDA for $TORCH_CUDA_ARCH_LIST}"
  MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$python" -m pip install --disable-pip-version-check -q \
    --no-index --no-deps --no-build-isolation --no-compile --target "$site" "$build/mmcv-2.1.0"
  rm -rf "$build"
  PYTHONPATH="$site" "$python" -c 'import mmcv.ops, mmdet, mmseg' ||
    { log "error: the stack in $site does not import; see the messages above"; exit 1; }
  log "mmcv built in $((SECONDS - started)) s; the stack imports from $site"
}

case "$1" in
  collect) shift; collect "$@" ;;
  install) shift; [[ $# -ge 1 ]] || { log "usage: $0 install DIR [PYTHON]"; exit 2; }; install "$@" ;;
  *) log "unknown command $1 (collect or install)"; exit 2 ;;
esac
