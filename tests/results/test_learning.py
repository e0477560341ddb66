"""The learning size's records, verdicts and figure, on hand-made hook records."""
import json
import math

import pytest

from r2o_mm.results import learning

# Two pretraining seeds per method; 10 steps an epoch; evaluations at epochs 0, 2 and 4.
KNN = {('R2O', 0): [30.0, 34.0, 40.0], ('R2O', 1): [28.0, 33.0, 38.0],
       ('BYOL', 0): [30.0, 31.0, 35.0], ('BYOL', 1): [28.0, 30.0, 33.0]}
MBO4 = {('R2O', 0): [20.0, 22.0, 26.0], ('R2O', 1): [21.0, 22.5, 24.0],
        ('BYOL', 0): [20.0, 19.0, 21.0], ('BYOL', 1): [21.0, 21.0, 20.0]}
K_OF_EPOCH = {0: 8, 2: 4, 4: 2}
PROBES = {('R2O', 0): 30.0, ('R2O', 1): 31.0, ('BYOL', 0): 29.0, ('BYOL', 1): 27.0,
          ('random init', 0): 25.0, ('random init', 1): 26.5}


def _write_run(folder, method, seed):
    folder.mkdir(parents=True)
    knn = [{'epoch': e, 'top1': v} for e, v in zip((0, 2, 4), KNN[(method, seed)])]
    # As MaskQualityHook writes them: one value per K, the current K (8, 4, then 2) among them.
    quality = [{'epoch': e, 'K': K_OF_EPOCH[e], 'mBO': {'4': v, '8': v + 5, **({'2': v + 10} if e == 4 else {})}}
               for e, v in zip((0, 2, 4), MBO4[(method, seed)])]
    (folder / 'knn_monitor.json').write_text(json.dumps(knn))
    (folder / 'mask_quality.json').write_text(json.dumps(quality))


def _probe(folder, value):
    folder.mkdir(parents=True)
    (folder / 'probe_metrics.json').write_text(json.dumps({'summary': {'mean': value},
                                                          'runs': [{'mIoU': value - 1}, {'mIoU': value + 1}]}))
    return learning.probe_miou(str(folder))


@pytest.fixture(scope='module')
def record(tmp_path_factory):
    root = tmp_path_factory.mktemp('learning')
    runs = {}
    for method in ('R2O', 'BYOL'):
        for seed in (0, 1):
            _write_run(root / f'{method}{seed}', method, seed)
            probe = _probe(root / f'probe_{method}{seed}', PROBES[(method, seed)])
            runs.setdefault(method, []).append(learning.run_record(str(root / f'{method}{seed}'), seed, 10, probe))
    random_probes = {seed: _probe(root / f'probe_random{seed}', PROBES[('random init', seed)]) for seed in (0, 1)}
    return learning.learning_record(runs, random_probes, {'size': 'hand'})


def test_run_record_reads_the_hooks_records_by_epoch(record):
    run = record['methods']['R2O'][0]
    assert [e['step'] for e in run['evaluations']] == [0, 20, 40]
    assert [e['knn_top1'] for e in run['evaluations']] == KNN[('R2O', 0)]
    assert [e['K'] for e in run['evaluations']] == [8, 4, 2]
    # The current K's mBO: K=8's at epoch 0, K=4's at epoch 2, K=2's (mBO(4) + 10 here) at epoch 4.
    assert [e['mBO']['current'] for e in run['evaluations']] == [25.0, 22.0, 36.0]
    assert run['probe_miou'] == 30.0 and run['probe_runs'] == [29.0, 31.0]
    assert record['size'] == 'hand'


def test_random_init_is_each_seeds_epoch_zero(record):
    base = record['random_init']
    assert [r['seed'] for r in base] == [0, 1]
    assert [r['knn_top1'] for r in base] == [30.0, 28.0]
    assert [r['mBO']['4'] for r in base] == [20.0, 21.0]
    assert [r['probe_miou'] for r in base] == [25.0, 26.5]


def _find(record, question, measure, comparison):
    found = [v for v in record['verdicts'] if (v['question'], v['measure'], v['comparison']) ==
             (question, measure, comparison)]
    assert len(found) == 1
    return found[0]


def test_verdicts_against_scipy(record):
    from scipy import stats
    # (a) R2O - random init on k-NN: last evaluations [40, 38] against the epoch-0 values [30, 28].
    verdict = _find(record, 'a', 'k-NN top-1', 'R2O - random init')
    welch = stats.ttest_ind([40.0, 38.0], [30.0, 28.0], equal_var=False).confidence_interval(0.95)
    assert verdict['difference'] == pytest.approx(10.0)
    assert (verdict['ci_low'], verdict['ci_high']) == pytest.approx((welch.low, welch.high), abs=1e-9)
    assert verdict['n'] == [2, 2] and verdict['verdict'].startswith('separated')
    assert verdict['varied'] == 'pretraining seed (n=2) vs initialisation seed (n=2)'
    # (a) BYOL - random init on the probe: [29, 27] against [25, 26.5].
    verdict = _find(record, 'a', 'probe mIoU', 'BYOL - random init')
    welch = stats.ttest_ind([29.0, 27.0], [25.0, 26.5], equal_var=False).confidence_interval(0.95)
    assert verdict['difference'] == pytest.approx(2.25)
    assert (verdict['ci_low'], verdict['ci_high']) == pytest.approx((welch.low, welch.high), abs=1e-9)
    assert verdict['verdict'].startswith('not separated')
    # (b) paired rise of R2O's mBO at K=4: 26 - 20 and 24 - 21.
    verdict = _find(record, 'b', 'mBO K=4', 'R2O: last - first evaluation')
    paired = stats.ttest_1samp([6.0, 3.0], 0.0).confidence_interval(0.95)
    assert verdict['difference'] == pytest.approx(4.5)
    assert (verdict['ci_low'], verdict['ci_high']) == pytest.approx((paired.low, paired.high), abs=1e-9)
    assert verdict['n'] == [2] and verdict['varied'] == 'paired over pretraining seeds (n=2)'
    # (c) R2O - BYOL on each measure, the mBO at K=8 included (mBO(4) + 5 here: 26+5, 24+5 vs 21+5, 20+5).
    verdict = _find(record, 'c', 'mBO K=8', 'R2O - BYOL')
    assert verdict['difference'] == pytest.approx(4.5) and verdict['n'] == [2, 2]
    assert {v['measure'] for v in record['verdicts'] if v['question'] == 'c'} == \
        {'k-NN top-1', 'probe mIoU', 'mBO K=4', 'mBO K=8'}
    # BYOL's masks over pretraining too: 21 - 20 and 20 - 21.
    byol = _find(record, 'b', 'mBO K=4', 'BYOL: last - first evaluation')
    assert byol['difference'] == pytest.approx(0.0) and byol['verdict'].startswith('not separated')


def test_verdict_lines_name_the_interval_and_what_varied(record):
    lines = learning.verdict_lines(record['verdicts'])
    assert lines[0] == '(a) pretrained - random init'
    assert '  k-NN top-1: R2O - random init = +10.00, 95% CI [' in lines[1]
    assert lines[2].startswith('      separated (the 95% CI excludes 0); pretraining seed (n=2)')
    assert '(b) the masks over pretraining' in lines and '(c) R2O - BYOL' in lines
    single = learning._verdict('c', 'knn_top1', 'R2O - BYOL', {'difference': 1.0, 'ci_low': math.nan,
                                                               'ci_high': math.nan, 'separated': None}, (1, 1), 'x')
    assert learning.verdict_lines([single])[1] == '  k-NN top-1: R2O - BYOL = +1.00'


def test_learning_curves_means_and_file(record, tmp_path):
    path = tmp_path / 'curves.png'
    drawn = learning.learning_curves(dict(record, title='hand'), str(path))
    assert path.stat().st_size > 0
    assert drawn['k-NN top-1 (%)']['R2O'] == {0: 29.0, 20: 33.5, 40: 39.0}
    assert drawn['mBO, K=4']['BYOL'] == {0: 20.5, 20: 20.0, 40: 20.5}
    assert drawn['mBO, K=8']['R2O'] == {0: 25.5, 20: 27.25, 40: 30.0}
    assert learning.learning_curves({'methods': {'R2O': []}, 'random_init': []}, str(tmp_path / 'none.png')) == {}
    assert not (tmp_path / 'none.png').exists()
