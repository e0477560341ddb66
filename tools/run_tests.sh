#!/usr/bin/env bash
# The test suite: sets up .venv when needed (idempotent), installs Slurm for
# its drills when missing (as root), then runs pytest in two processes
# (pytest-xdist, one test file per process at a time; half of the suite's time
# is spent waiting on subprocesses, signals and Slurm, so two processes on two
# cores take about half as long). R2O_TEST_PROCESSES sets their number;
# -n 0 after the command runs everything in one process.
#   tools/run_tests.sh [pytest options]     e.g. tests/engine -x -k schedule
# pytest's own help: .venv/bin/python -m pytest --help
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then  # usage, before any set-up
  sed -n '2,/^set /p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup_env.sh"
# The Slurm drills (tests/tools/test_slurm.py) run a private cluster: Debian's
# slurm-wlm and munge, installed here when missing and this runs as root
# (R2O_NO_APT=1 skips it; without them those tests are skipped, saying why).
if [[ $EUID -eq 0 && -z "${R2O_NO_APT:-}" ]] && command -v apt-get >/dev/null &&
    ! { command -v slurmctld && command -v munged; } >/dev/null; then
  echo "[run_tests] installing Debian's slurm-wlm and munge for the Slurm drills" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge; } >/dev/null ||
    echo "[run_tests] could not install slurm-wlm and munge; the Slurm drills will be skipped" >&2
fi
cd "$root"
processes="${R2O_TEST_PROCESSES:-$(( $(nproc) < 2 ? 1 : 2 ))}"
# Each test process and what it starts computes with its share of the cores: two processes that
# each spin two OpenMP threads on two cores lose a quarter of the CPU to waiting threads.
if [[ -z "${OMP_NUM_THREADS:-}" ]] && (( processes > 1 )); then
  export OMP_NUM_THREADS=$(( $(nproc) / processes > 0 ? $(nproc) / processes : 1 ))
fi
# --no-loadscope-reorder: the files start in tests/conftest.py's order (the longest first), not in
# xdist's (the files with the most tests first), so that no long file is left for the end.
exec "$root/.venv/bin/python" -m pytest -n "$processes" --dist loadfile --no-loadscope-reorder "$@"
