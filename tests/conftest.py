"""Shared fixtures, and the order in which test files start."""
import os

import pytest

# The test files that take longest start first (seconds per file on a 2-core Intel Xeon, both test
# processes busy, 2026-12-02): with two test processes (tools/run_tests.sh: pytest-xdist, one file per
# process at a time, in this order: --no-loadscope-reorder) a long file that started last would leave
# the other process idle at the end. xdist's own order (files with the most tests first) ran the GPU
# check's rehearsal and the demo last.
LONGEST_FIRST = ['tests/tools/test_resume_drills.py',  # 234
                 'tests/transfer/test_transfer_run.py',  # 119
                 'tests/tools/test_slurm.py',  # 93 and 185 in two runs, waiting on Slurm mostly
                 'tests/tools/test_reproduce.py',  # 150 alone (2026-12-04), the Slurm drill 97 of it
                 'tests/tools/test_gpu_check.py',  # 79
                 'tests/tools/test_demo.py',  # 75
                 'tests/transfer/test_imagenet_tasks.py',  # 47
                 'tests/tools/test_bad_input.py',  # 46
                 'tests/tools/test_train.py',  # 36
                 'tests/test_readme.py',  # 22
                 'tests/configs/test_transfer_configs.py',  # 22
                 'tests/transfer/test_authors_release.py',  # 15
                 'tests/results/test_collect.py', 'tests/models/test_row_compaction.py',
                 'tests/tools/test_one_line_errors.py', 'tests/tools/test_eval_masks.py',
                 'tests/tools/test_browse_dataset.py', 'tests/evaluation/test_linear_probe.py',
                 'tests/models/test_r2o.py']  # 13 to 9; the rest take under 7 s each


def pytest_collection_modifyitems(config, items):
    root = str(config.rootpath)

    def rank(item):
        path = os.path.relpath(str(item.path), root)
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order inside a file and among the others is kept

from r2o_mm.utils.dist import free_port_pair


@pytest.fixture
def free_port():
    """Free ports for torchrun, instead of fixed numbers that collide with
    whatever else runs on the machine or a port still in TIME_WAIT."""
    return free_port_pair


@pytest.fixture(scope='module')
def free_port_module():
    return free_port_pair


@pytest.fixture
def mount_tmpfs():
    """``mount_tmpfs(path, options)`` mounts a tmpfs (a small or read-only
    file system) at ``path`` for the test and unmounts it afterwards; skips
    the test where mounting is not allowed (not root, or no permission)."""
    import os
    import subprocess
    mounted = []

    def mount(path, options):
        if os.geteuid() != 0:
            pytest.skip('mounting a small file system needs root (run the suite as root, as CI does)')
        result = subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(path)], capture_output=True,
                                text=True)
        if result.returncode:
            pytest.skip(f'mount is not permitted here: {result.stderr.strip()}')
        mounted.append(str(path))

    yield mount
    for path in reversed(mounted):
        subprocess.run(['umount', path], check=True)


@pytest.fixture
def tool_main(capsys):
    """``tool_main('train.py', argv)`` runs tools/<tool>'s main(argv) in this
    process (the same code as the command, without an interpreter start per
    case) and returns its exit status and every line it would print."""
    import importlib.util
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def run(tool: str, argv) -> tuple[int, list[str]]:
        if tool not in _TOOLS:
            spec = importlib.util.spec_from_file_location(f'r2o_tool_{tool[:-3]}', os.path.join(root, 'tools', tool))
            _TOOLS[tool] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(_TOOLS[tool])
        environment = dict(os.environ)
        capsys.readouterr()
        try:
            _TOOLS[tool].main(list(argv))
            code, message = 0, ''
        except SystemExit as stop:
            code, message = (stop.code, '') if isinstance(stop.code, int) else (1, str(stop.code))
        finally:
            os.environ.clear()
            os.environ.update(environment)
        captured = capsys.readouterr()
        return code, (captured.out + captured.err + message).strip().splitlines()

    return run


_TOOLS = {}  # tools/*.py loaded once per test process


@pytest.fixture
def train_main(tool_main):
    """``train_main(argv)``: tools/train.py's main(argv) in this process (:func:`tool_main`)."""
    return lambda argv: tool_main('train.py', argv)


def untracked_in_repository() -> set[str] | None:
    """The files git would list as new in this checkout (untracked and not
    ignored); None outside a git checkout (an unpacked archive)."""
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.exists(os.path.join(root, '.git')):
        return None
    result = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=all'], cwd=root,
                            capture_output=True, text=True, timeout=60, check=True)
    return {line[3:] for line in result.stdout.splitlines() if line.startswith('??')}
