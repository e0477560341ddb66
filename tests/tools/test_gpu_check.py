"""tools/gpu_check.sh: the CPU rehearsal of every phase, so the script cannot rot."""
import json
import os
import subprocess
import sys

import pytest
import torch

import r2o_mm  # noqa: F401  (allow-lists the objects of mmengine checkpoints for torch.load)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PHASES = ['environment', 'numerics', 'speed', 'distributed', 'transfer', 'learning']


def gpu_check(args, tmp_path, timeout=900):
    return subprocess.run(['tools/gpu_check.sh', *args, '--out', str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ, PYTHON=sys.executable))


def test_cpu_rehearsal_runs_every_phase(tmp_path):
    result = gpu_check(['--device', 'cpu', '--quick', '--minutes', '6'], tmp_path)
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    lines = [line for line in out.splitlines() if line.startswith('[')]
    assert [line.split('] ')[1].split(' (')[0] for line in lines] == PHASES
    assert all(line.startswith('[PASS]') for line in lines), lines
    assert out.splitlines()[-1].startswith('gpu_check: PASS: 6 passed, 0 failed, 0 skipped in ')
    record = json.loads((tmp_path / 'report.json').read_text())
    phases = {phase['name']: phase for phase in record['phases']}
    # CPU against CPU: the same kernels, so the same numbers; compaction on
    # and off agree within the stated tolerance.
    numerics = phases['numerics']['figures']
    assert numerics['kmeans_label_agreement'] == 1.0 and numerics['mask_agreement'] == 1.0
    assert numerics['loss_rel'] == 0.0 and numerics['compaction_rel'] <= record['tolerances']['compaction_rel']
    speed = phases['speed']['figures']
    assert {row['method'] for row in speed['step_table']} == {'R2O', 'BYOL'}
    assert {row['precision'] for row in speed['step_table']} == {'fp32', 'bf16'}
    assert speed['goals'] == 'checked on a GPU only'
    # Two CPU processes through tools/dist_train.sh: 8 photographs, 2 per process.
    assert phases['distributed']['figures'] == {'processes': 2, 'backend': 'gloo'}
    launch = (tmp_path / 'logs' / 'distributed.log').read_text()
    assert 'world size 2, global batch 4' in launch
    assert launch.count('no GPU visible: 2 CPU processes (gloo backend') == 1
    assert torch.load(tmp_path / 'distributed' / 'epoch_1.pth', weights_only=True)['meta']['iter'] == 2
    assert set(phases['transfer']['figures']) == {'voc', 'coco_1x'}
    # The learning phase: the demo's learning size over two pretraining seeds per method (the quick size's most).
    learning = phases['learning']['figures']
    assert learning['pretraining_seeds'] == 2 and learning['epochs'] == 1
    runs = json.loads((tmp_path / 'learning.json').read_text())
    assert {m: [r['seed'] for r in seeds] for m, seeds in runs['methods'].items()} == {'R2O': [0, 1], 'BYOL': [0, 1]}
    assert [r['seed'] for r in runs['random_init']] == [0, 1]
    assert [[e['epoch'] for e in r['evaluations']] for r in runs['methods']['R2O']] == [[0, 1], [0, 1]]
    assert learning['verdicts']['a: k-NN top-1: R2O - random init'].endswith(
        'pretraining seed (n=2) vs initialisation seed (n=2)')
    assert 'b: mBO K=4: R2O: last - first evaluation' in learning['verdicts']
    assert (tmp_path / 'learning_curves.png').stat().st_size > 0
    report = (tmp_path / 'report.md').read_text()
    assert '| numerics | PASS |' in report and '| batch | precision | method |' in report
    assert record['machine']['name'] in report


@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is visible: the check would run')
def test_missing_gpu_is_one_line_and_a_failure(tmp_path):
    result = gpu_check(['--phases', 'environment'], tmp_path, timeout=300)
    assert result.returncode == 1
    assert '[FAIL] environment' in result.stdout and 'torch sees no GPU' in result.stdout
    assert 'Traceback' not in result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith('gpu_check: FAIL: environment: 0 passed, 1 failed')
