"""The demo pipeline at its smallest size produces the results table with every row."""
import os
import subprocess
import sys

import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_demo_pipeline_produces_the_table(tmp_path):
    from conftest import untracked_in_repository
    before = untracked_in_repository()
    result = subprocess.run([sys.executable, 'tools/demo.py', '--size', 'test', '--out', str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    if before is not None:  # in a git checkout: the demo left nothing new in the repository
        assert untracked_in_repository() - before == set()
    assert '[9/9] collate results' in result.stdout and 'ETA' in result.stdout
    summary = result.stdout[result.stdout.index('method       measure'):result.stdout.index('done in')]
    assert all(len(line) <= 120 for line in summary.splitlines()) and 'linear probe (frozen) mIoU' in summary
    assert str(tmp_path) not in summary  # paths stay in the CSVs
    # Every verdict names what varied: the probes over pretraining (and init) seeds, the
    # fine-tuning over one pretraining run; never a bare "separated".
    assert 'separated' not in summary
    assert ('linear probe (frozen) mIoU: R2O - random init = ' in summary and
            'the spread over pretraining seeds (n=2) and initialisation seeds (n=2)' in summary)
    assert 'the pretraining-seed spread (n=2 and 2)' in summary  # R2O - BYOL on the probe
    assert 'paired over pretraining seeds (n=2)' in summary  # the mBO change
    from r2o_mm.utils.machine import machine_fingerprint
    assert f" min on {machine_fingerprint()['name']}." in result.stdout  # the machine is named
    # Generated scenes and photographs are none of the paper's pretraining data: every row is 'other'.
    other = pd.read_csv(tmp_path / 'results' / 'other.csv', dtype=str, keep_default_na=False)
    probes = other[other.benchmark == 'voc_probe']
    assert set(probes.row) == {'R2O (this code)', 'BYOL (this code)', 'random init'}
    assert set(probes.runs) == {'4'} and set(probes.n) == {'2'} and all(ci.startswith('[') for ci in probes['95% CI'])
    assert sorted(probes.varied) == ['initialisation seed (n=2) x probe seed (n=2)'] + \
        ['pretraining seed (n=2) x probe seed (n=2)'] * 2
    history = pd.read_json(tmp_path / 'pretrain' / 'r2o_seed0' / 'mask_quality.json')
    assert list(history.epoch) == [0, 1]
    table = other
    assert set(table.row) == {'R2O (this code)', 'BYOL (this code)', 'random init'}
    ran = table[(table.benchmark == 'voc') & (table.reproduced != 'not run')]
    assert list(ran.row) == ['R2O (this code)']  # the test size fine-tunes R2O on VOC only (no COCO)
    for value in ran.reproduced:
        assert 0.0 <= float(value) <= 100.0
    assert set(table[~table.benchmark.isin(['voc', 'voc_probe'])].reproduced) == {'not run'}
    assert set(ran.published) == {'not published'} and set(ran.difference) == {''}  # nothing to compare with
    table1 = pd.read_csv(tmp_path / 'results' / 'table1.csv', dtype=str, keep_default_na=False)
    assert set(table1.reproduced) == {'not run'}  # never beside ImageNet-1k's published numbers
    # The shrunk protocol lists its deviations from the released one.
    for check in ran['protocol check']:
        assert check.startswith('deviates: ') and 'backbone: ResNet-18' in check and 'global batch' in check
    assert set(ran.varied) == {'one run: nothing varied'}
    for name in ('other.md', 'table1.md', 'reproduced_vs_published.png', 'k_schedule.png',
                 'training_curves_r2o_seed1.png',
                 'mask_quality.png', 'probes.png', 'fig3_masks_r2o.png'):
        assert (tmp_path / 'results' / name).exists()
