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
    # Every relayed line names its run (runs go two at a time); nothing is cut, long lines are wrapped.
    relayed = [line for line in result.stdout.splitlines() if ' - mmengine - ' in line or 'linear probe mIoU' in line]
    assert relayed and all(line.startswith('   [') for line in relayed)
    for tag in ('[r2o s0]', '[r2o s1]', '[byol s0]', '[byol s1]', '[probe random init s1]', '[voc r2o s0 ft0]'):
        assert f'   {tag} ' in result.stdout, tag
    assert all(len(line) <= 120 for line in result.stdout.splitlines())
    wrote = result.stdout[result.stdout.index('   wrote other.md'):result.stdout.index('method       measure')]
    assert 'no file for table1, table2, table3, table4, mocov2, probes, linear' in ' '.join(wrote.split())
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
    # Never beside ImageNet-1k's published numbers: no paper table is written at all.
    assert not (tmp_path / 'results' / 'table1.csv').exists()
    # The shrunk protocol lists its deviations from the released one.
    for check in ran['protocol check']:
        assert check.startswith('deviates: ') and 'backbone: ResNet-18' in check and 'global batch' in check
    assert set(ran.varied) == {'one run: nothing varied'}
    for name in ('other.md', 'k_schedule.png', 'training_curves_r2o_seed1.png', 'training_curves_byol_seed1.png',
                 'mask_quality.png', 'mask_quality.md', 'probes.png', 'fig3_masks_r2o.png'):
        assert (tmp_path / 'results' / name).exists(), name
    # Nothing is comparable with a published number: no reproduced-vs-published figure.
    assert not (tmp_path / 'results' / 'reproduced_vs_published.png').exists()
    # The figures' content, from the same functions on the demo's own records: Fig. 3's masks in K order
    # (the mask-quality picture's columns follow the record), the schedule of the runs (8 -> 2 over 1 epoch:
    # K(1) = 2), none for BYOL.
    import json
    from r2o_mm.results import figures
    assert [list(r['mBO']) for r in history.to_dict('records')] == [['4', '8'], ['2', '4', '8']]
    infos = [json.loads((tmp_path / 'pretrain' / run / 'pretrain_info.json').read_text())
             for run in ('r2o_seed0', 'r2o_seed1', 'byol_seed0', 'byol_seed1')]
    assert figures.k_schedule(infos, str(tmp_path / 'k.png')) == {'r2o_tiny_cpu: cosine 8 -> 2, 1 epochs': [2]}
    assert figures.k_schedule(infos[2:], str(tmp_path / 'k_byol.png')) == {}
    # The mBO in a table: first and last evaluation per K, over the two pretraining seeds.
    quality = pd.read_csv(tmp_path / 'results' / 'mask_quality.csv', dtype=str, keep_default_na=False)
    assert set(quality.row) == {'R2O (this code)', 'BYOL (this code)'} and set(quality.n) == {'2'}
    assert sorted(quality[quality.row == 'R2O (this code)'].K) == [
        '4', '8', 'current (8 -> 2) (zeros vs the rest, any encoder: not a measure of learning)']
