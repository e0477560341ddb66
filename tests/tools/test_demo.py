"""The demo pipeline at its smallest size produces the results table with every row."""
import os
import subprocess
import sys

import pandas as pd
import pytest

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


def test_learning_size_writes_the_record_the_figure_and_the_verdicts(tmp_path):
    """The learning size's code path at test size: two pretraining seeds per method, two evaluations."""
    import json
    from r2o_mm.results.statistics import compare
    result = subprocess.run([sys.executable, 'tools/demo.py', '--size', 'learn_test', '--out', str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert all(len(line) <= 120 for line in result.stdout.splitlines())
    record = json.loads((tmp_path / 'results' / 'learning.json').read_text())
    assert (tmp_path / 'results' / 'learning_curves.png').stat().st_size > 0
    assert set(record['methods']) == {'R2O', 'BYOL'} and record['steps_per_epoch'] == 2  # 16 scenes, batch 8
    for method, runs in record['methods'].items():
        assert [run['seed'] for run in runs] == [0, 1]
        for run in runs:
            assert [e['epoch'] for e in run['evaluations']] == [0, 1, 2]
            assert [e['step'] for e in run['evaluations']] == [0, 2, 4]
            for evaluation in run['evaluations']:
                assert 0 <= evaluation['knn_top1'] <= 100
                assert set(evaluation['mBO']) == {'4', '8', 'current'}
                assert all(0 <= v <= 100 for v in evaluation['mBO'].values())
            assert 0 <= run['probe_miou'] <= 100 and len(run['probe_runs']) == 1
    # Epoch 0 is measured before the first step: a seed's initialisation is the same for both methods
    # (the same model is built from the same seed), and it is the random-init baseline of the k-NN and mBO.
    for seed in (0, 1):
        r2o, byol = record['methods']['R2O'][seed]['evaluations'][0], record['methods']['BYOL'][seed]['evaluations'][0]
        assert r2o['knn_top1'] == byol['knn_top1'] and r2o['mBO']['4'] == byol['mBO']['4']
        base = record['random_init'][seed]
        assert base['knn_top1'] == r2o['knn_top1'] and base['mBO'] == r2o['mBO']
        assert 0 <= base['probe_miou'] <= 100
    # The verdicts, recomputed from the record: (a) on the last k-NN evaluation against the random inits.
    found = {(v['question'], v['measure'], v['comparison']): v for v in record['verdicts']}
    assert {q for q, _, _ in found} == {'a', 'b', 'c'}
    last = [run['evaluations'][-1]['knn_top1'] for run in record['methods']['BYOL']]
    expected = compare(last, [r['knn_top1'] for r in record['random_init']])
    verdict = found[('a', 'k-NN top-1', 'BYOL - random init')]
    assert verdict['difference'] == expected['difference'] and verdict['n'] == [2, 2]
    assert verdict['varied'] == 'pretraining seed (n=2) vs initialisation seed (n=2)'
    rises = [run['evaluations'][-1]['mBO']['4'] - run['evaluations'][0]['mBO']['4'] for run in record['methods']['R2O']]
    assert found[('b', 'mBO K=4', 'R2O: last - first evaluation')]['difference'] == pytest.approx(sum(rises) / 2)
    summary = result.stdout[result.stdout.index('encoder '):result.stdout.index('done in')]
    assert '(a) pretrained - random init' in summary and 'paired over pretraining seeds (n=2)' in summary
    from r2o_mm.utils.machine import machine_fingerprint
    assert record['machine'] == machine_fingerprint()['name'] and record['machine'] in result.stdout


def test_the_summary_says_why_when_pretraining_probes_below_the_random_init():
    import importlib.util
    spec = importlib.util.spec_from_file_location('demo', os.path.join(ROOT, 'tools', 'demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    # R2O's mean 20.5 < 23.5 (the random init's), BYOL's 25 above it: only R2O is named.
    note = demo.probe_note({'R2O': [20.0, 21.0], 'BYOL': [25.0], 'random init': [23.0, 24.0]})
    assert note[0] == '' and note[1].startswith('Why R2O probes below the random init: ')
    assert 'tools/demo.sh --size learn' in ' '.join(note) and all(len(line) <= 120 for line in note)
    both = demo.probe_note({'R2O': [20.0], 'BYOL': [21.0], 'random init': [23.0]})
    assert both[1].startswith('Why R2O and BYOL probe below the random init: ')
    assert demo.probe_note({'R2O': [24.0], 'BYOL': [23.5], 'random init': [23.5]}) == []  # equal is not below
