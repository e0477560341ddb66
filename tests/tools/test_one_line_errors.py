"""A user's mistake gives one line, never a traceback; every shell tool
answers --help without running the set-up."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def one_line(args, env=None):
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, **(env or {})))
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    return lines[0]


@pytest.fixture(scope='module')
def corrupt(tmp_path_factory):
    path = tmp_path_factory.mktemp('bad') / 'epoch_1.pth'
    path.write_bytes(b'PK\x03\x04 not really a checkpoint')
    return str(path)


@pytest.mark.parametrize('tool', ['eval_cub.py', 'eval_knn.py', 'measure_kmeans_empty.py'])
def test_a_bad_checkpoint_is_one_line(tool, corrupt, tmp_path):
    extra = {'eval_cub.py': [corrupt, '--data', str(tmp_path)],
             'eval_knn.py': [corrupt, '--train', str(tmp_path), '--val', str(tmp_path)],
             'measure_kmeans_empty.py': ['--checkpoint', corrupt]}[tool]
    if tool == 'eval_cub.py':  # the data must pass first: a minimal CUB layout
        for name in ('images.txt', 'train_test_split.txt'):
            (tmp_path / name).write_text('1 a/1.jpg\n' if name == 'images.txt' else '1 1\n')
        (tmp_path / 'images').mkdir()
        (tmp_path / 'segmentations').mkdir()
    if tool == 'eval_knn.py':
        (tmp_path / 'class_a').mkdir()
        from PIL import Image
        Image.new('RGB', (8, 8)).save(tmp_path / 'class_a' / 'x.png')
    line = one_line([sys.executable, os.path.join('tools', tool), *extra])
    assert corrupt in line and 'truncated or corrupt' in line


def test_a_missing_class_list_is_one_line(tmp_path):
    (tmp_path / 'class_a').mkdir()
    line = one_line([sys.executable, 'tools/eval_knn.py', 'none.pth', '--train', str(tmp_path), '--val',
                     str(tmp_path), '--classes', str(tmp_path / 'imagenet100.txt')])
    assert line.startswith(f'eval_knn: class list {tmp_path}/imagenet100.txt: cannot be read')


@pytest.mark.parametrize('tool', ['setup_env.sh', 'run_tests.sh', 'demo.sh', 'dist_train.sh', 'slurm_train.sh', 'slurm_transfer.sh',
                                  'transfer.sh'])
def test_shell_tools_answer_help_without_the_set_up(tool, tmp_path):
    """With an environment folder that does not exist, the set-up would
    start creating it: --help must print the usage and exit 0 first."""
    result = subprocess.run([os.path.join(ROOT, 'tools', tool), '--help'], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env=dict(os.environ, R2O_VENV=str(tmp_path / 'venv')))
    assert result.returncode == 0, result.stderr
    assert f'tools/{tool}' in result.stdout and '[setup_env]' not in result.stdout + result.stderr
    assert not (tmp_path / 'venv').exists()
