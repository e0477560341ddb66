#!/usr/bin/env bash
# Idempotent set-up of the pinned OpenMMLab stack in ./.venv.
#
#   tools/setup_env.sh            # create or update .venv (seconds when ready)
#   R2O_FORCE_SETUP=1 tools/setup_env.sh   # reinstall the Python packages
#
# What it does, in order:
#   1. creates .venv with Python 3.11 (R2O_PYTHON overrides the interpreter);
#   2. installs torch/torchvision (pinned in requirements/runtime.txt);
#   3. builds mmcv 2.1.0 WITH its compiled ops from the source distribution,
#      or reuses a wheel cached under ~/.cache/r2o_mm/wheels (R2O_CACHE_DIR),
#      keyed by mmcv, torch, Python and CPU/CUDA variant;
#   4. installs everything else from requirements/runtime.txt, constrained by
#      requirements/lock.txt, and this package in editable mode.
# A stamp in .venv records the hash of the inputs; an unchanged re-run exits
# at once. R2O_TORCH_INDEX_URL adds a package index for torch/torchvision, to
# pick the build for your CUDA driver (e.g. PyTorch's cu126 index); the pinned
# versions stay, only the build variant changes.
#
# mmcv's CUDA ops (Mask R-CNN's RoIAlign and NMS on GPUs) are built when a GPU
# is visible, or without one (a login node, a CPU build machine) when asked:
#   R2O_CUDA_ARCH="8.0;9.0" tools/setup_env.sh   # these architectures
#   FORCE_CUDA=1 tools/setup_env.sh               # default: 8.0;9.0+PTX on CUDA 13
#                                                 # (A100, H100/H200, newer by PTX)
# The compiler must be torch's CUDA release: a system toolkit of that release
# is used (CUDA_HOME, nvcc on PATH, /usr/local/cuda-X.Y), else NVIDIA's
# compiler packages of that release (nvcc, nvvm, crt, cccl; about 45 MB) are
# installed from the package registry into .venv and assembled into
# .venv/cuda-X.Y. R2O_NVCC=registry uses the packages even when a system
# toolkit matches. A build for one architecture takes about 25 minutes on 2
# cores; the wheel is cached per architecture list. R2O_MMCV_CPU_ONLY=1 builds
# the CPU ops only.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then  # usage, before any set-up
  sed -n '2,/^set /p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${R2O_VENV:-$root/.venv}"
python_bin="${R2O_PYTHON:-python3.11}"
cache_dir="${R2O_CACHE_DIR:-$HOME/.cache/r2o_mm}"
mmcv_version="2.1.0"
stamp="$venv/.r2o_setup_stamp"

log() { printf '[setup_env] %s\n' "$*" >&2; }

torch_index="${R2O_TORCH_INDEX_URL:-}"
inputs_hash="$( { cat "$root/requirements/runtime.txt" "$root/requirements/lock.txt" \
  "$root/pyproject.toml" "$root/tools/setup_env.sh" "$root/r2o_mm/utils/cuda_toolkit.py"
  echo "torch index: $torch_index; CUDA: ${R2O_CUDA_ARCH:-} ${FORCE_CUDA:-} ${R2O_NVCC:-} ${R2O_MMCV_CPU_ONLY:-}"; } |
  sha256sum | cut -c1-16)"
if [[ -z "${R2O_FORCE_SETUP:-}" && -f "$stamp" && "$(cat "$stamp")" == "$inputs_hash" ]]; then
  exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
  command -v "$python_bin" >/dev/null || {
    log "error: $python_bin not found; install Python 3.11 or set R2O_PYTHON"; exit 1; }
  log "creating $venv with $($python_bin --version)"
  "$python_bin" -m venv "$venv"
fi
py="$venv/bin/python"
pip=("$py" -m pip install --disable-pip-version-check -q)

# mmcv's setup.py imports pkg_resources, removed in setuptools 82.
"${pip[@]}" "setuptools<82" wheel
pin() { grep -E "^$1==" "$root/requirements/runtime.txt"; }
log "installing $(pin torch) $(pin torchvision)${torch_index:+ (also from $torch_index)}"
# A local build tag (2.14.1+cu126) satisfies the pin 2.14.1 and ranks above
# the plain version, so the extra index's build is the one installed.
"${pip[@]}" -c "$root/requirements/lock.txt" ${torch_index:+--extra-index-url "$torch_index"} \
  ${torch_index:+--upgrade} "$(pin torch)" "$(pin torchvision)"
"$py" -c 'import torch; print(f"[setup_env] torch {torch.__version__}, CUDA build {torch.version.cuda}, '\
'GPU visible: {torch.cuda.is_available()}")' >&2

torch_version="$("$py" -c 'import torch; print(torch.__version__.split("+")[0])')"
py_tag="$("$py" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
toolkit=("$py" "$root/r2o_mm/utils/cuda_toolkit.py")
variant="cpu"
if [[ -z "${R2O_MMCV_CPU_ONLY:-}" ]] && { [[ -n "${R2O_CUDA_ARCH:-}" || "${FORCE_CUDA:-0}" == 1 ]] ||
    "$py" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; }; then
  torch_cuda="$("$py" -c 'import torch; print(torch.version.cuda or "")')"
  [[ -n "$torch_cuda" ]] || {
    log "error: torch $torch_version is a CPU build; mmcv's CUDA ops need torch's CUDA build (R2O_TORCH_INDEX_URL)"
    exit 1; }
  cuda_home=""
  [[ "${R2O_NVCC:-auto}" == registry ]] || cuda_home="$("${toolkit[@]}" system)"
  if [[ -z "$cuda_home" ]]; then
    requirements="$("${toolkit[@]}" requirements)"
    log "installing the CUDA $torch_cuda compiler from the package registry: $requirements"
    # shellcheck disable=SC2086  # one word per requirement
    "${pip[@]}" $requirements
    cuda_home="$("${toolkit[@]}" home "$venv/cuda-$torch_cuda")"
  fi
  arch="$("${toolkit[@]}" arch)"
  export CUDA_HOME="$cuda_home" TORCH_CUDA_ARCH_LIST="$arch" PATH="$cuda_home/bin:$PATH"
  log "CUDA ops: nvcc $("$cuda_home/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p') from $cuda_home, architectures $arch"
  variant="cuda${torch_cuda}_arch-${arch//;/-}"
fi
wheel_dir="$cache_dir/wheels/mmcv-${mmcv_version}_torch-${torch_version}_${py_tag}_${variant}"

if ! compgen -G "$wheel_dir/mmcv-*.whl" >/dev/null; then
  jobs="${MAX_JOBS:-$(nproc)}"
  log "building mmcv $mmcv_version with compiled ops ($variant), $jobs parallel jobs: the CPU ops took "\
"5.0 to 9.4 minutes on 2-core Intel Xeons (AVX-512), 16.5 on a 2-core AMD EPYC (AVX2); each CUDA architecture "\
"adds more (progress below)"
  build_dir="$(mktemp -d)"
  trap 'rm -rf "$build_dir"' EXIT
  # The sdist's metadata step imports torch, hence --no-build-isolation.
  "$py" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: \
    --no-build-isolation "mmcv==$mmcv_version" -d "$build_dir"
  tar -xzf "$build_dir/mmcv-$mmcv_version.tar.gz" -C "$build_dir"
  src="$build_dir/mmcv-$mmcv_version"
  # torch >= 2.10 headers need C++20; mmcv 2.1.0 forces C++17.
  sed -i 's/c++17/c++20/g; s/c++14/c++20/g' "$src/setup.py"
  # np.float was removed in numpy 2.
  sed -i 's/np\.float\b/float/g' "$src/mmcv/ops/pixel_group.py"
  # ninja: torch's extension builder compiles MAX_JOBS units at a time with it,
  # one at a time without it (and prints the [N/M] lines the progress reads).
  "${pip[@]}" -c "$root/requirements/lock.txt" ninja
  export PATH="$venv/bin:$PATH" MMCV_WITH_OPS=1 MAX_JOBS="$jobs"
  # No debug symbols: Python's compiler flags without their -g (CFLAGS replaces those flags as a
  # whole, so the rest, -O3 included, is kept); the same ops, built faster, a smaller wheel. A CFLAGS
  # of your own is used as it is.
  [[ -n "${CFLAGS:-}" ]] || export CFLAGS="$("$py" -c 'import sysconfig
print(" ".join(f for f in sysconfig.get_config_var("CFLAGS").split() if f != "-g"))')"
  if [[ "$variant" == cuda* ]]; then export FORCE_CUDA=1; else unset FORCE_CUDA; fi
  mkdir -p "$cache_dir/logs"
  build_log="$cache_dir/logs/mmcv-${mmcv_version}_${variant}.log"
  "$py" -m pip wheel --disable-pip-version-check -v --no-deps --no-build-isolation \
    -w "$build_dir/dist" "$src" 2>&1 | "$py" "$root/r2o_mm/utils/build_progress.py" "$build_log" || {
    tail -n 30 "$build_log" >&2
    log "error: the mmcv build failed; its full log: $build_log"; exit 1; }
  mkdir -p "$wheel_dir"
  mv "$build_dir"/dist/mmcv-*.whl "$wheel_dir/"
  log "cached $(ls "$wheel_dir")"
fi
# --force-reinstall: the same mmcv version may be installed in the other variant.
"${pip[@]}" --no-deps --force-reinstall "$wheel_dir"/mmcv-*.whl

log "installing the rest of requirements/runtime.txt"
"${pip[@]}" -c "$root/requirements/lock.txt" -r "$root/requirements/runtime.txt"
"${pip[@]}" -c "$root/requirements/lock.txt" --no-deps -e "$root"

"$py" -c 'import mmcv.ops, mmdet, mmseg, skimage.segmentation' || {
  log "error: the installed stack does not import; see the messages above"; exit 1; }
echo "$inputs_hash" > "$stamp"
log "ready: $venv"
