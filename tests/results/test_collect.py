"""Results tables from fabricated work dirs; published numbers against docs/method.md section 6."""
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from r2o_mm.results.collect import write_tables

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PUBLISHED = os.path.join(ROOT, 'results', 'published.csv')


def write(path, payload):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        json.dump(payload, handle)


COST = dict(unit='GPU-hours', device_hours=3840.0, images_per_second=4450.0, peak_memory_mb=20480.0)


def pretrain(root, name, config, dataset, epochs=300, subset=None, mask_source='kmeans', seed=0, recipe=None,
             snapshot=None):
    """A pretraining run's record; returns the path of its checkpoint at
    epoch ``snapshot`` (default: the last). ``recipe``: the recipe
    fingerprint it records (None: a record from before the fingerprint)."""
    folder = os.path.join(root, name)
    info = dict(config=config, dataset=dataset, data_root='data/x', subset_file=subset, mask_source=mask_source,
                superpixel_source='slic', epochs=epochs, world_size=128, global_batch=4096, seed=seed, cost=COST,
                k_schedule=dict(type='ClusterScheduleHook', kind='cosine', start=128, end=4))
    if recipe:
        info['recipe_sha256'] = recipe
    write(os.path.join(folder, 'pretrain_info.json'), info)
    return os.path.join(folder, f'epoch_{snapshot or epochs}.pth')


def transfer(root, name, task, checkpoint, metrics, seed=0, protocol=None, mmdet='3.3.0', finished=True,
             deviations=(), cost=None):
    """A finished (or crashed) transfer run; ``deviations=None`` is a run
    from before the protocol check."""
    family = 'COCO Mask R-CNN' if task.startswith('coco') else 'FCN'
    protocol = protocol or (f'MoCo/mmselfsup {family}' if 'mocov2' in task else f'DetCon {family}')
    info = dict(task=task, protocol=protocol, checkpoint=checkpoint, seed=seed, world_size=8,
                global_batch=64, mmdet=mmdet, mmseg='1.2.2', mmengine='0.10.7', reference_protocol=task,
                protocol_deviations=None if deviations is None else list(deviations))
    write(os.path.join(root, name, 'run_info.json'), info)
    if finished:
        write(os.path.join(root, name, 'metrics.json'), dict(info, metrics=metrics, finished=True, cost=cost))


@pytest.fixture(scope='module')
def tables(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('work_dirs'))
    in1k = pretrain(root, 'r2o_imagenet_300e', 'r2o_imagenet_300e.py', 'ImageFolderUnlabeled')
    coco = pretrain(root, 'r2o_coco', 'r2o_coco.py', 'CocoUnlabeled', epochs=800)
    full = pretrain(root, 'in100_full', 'r2o_imagenet100_full.py', 'ImageFolderUnlabeled', 200,
                    subset='data/imagenet/imagenet100.txt')
    byol = pretrain(root, 'in100_byol', 'r2o_imagenet100_byol.py', 'ImageFolderUnlabeled', 200,
                    subset='data/imagenet/imagenet100.txt', mask_source='whole_image')
    t = os.path.join(root, 'transfer')
    transfer(t, 'a/coco_1x', 'coco_1x', in1k, {'coco/bbox_mAP': 0.420, 'coco/segm_mAP': 0.380})
    transfer(t, 'a/voc', 'voc', in1k, {'mIoU': 77.0, 'aAcc': 90.0}, seed=0,
             cost=dict(unit='GPU-hours', device_hours=3.0, images_per_second=50.0, peak_memory_mb=8192.0))
    transfer(t, 'b/voc', 'voc', in1k, {'mIoU': 78.0}, seed=1,          # a second seed
             cost=dict(unit='GPU-hours', device_hours=5.0, images_per_second=70.0, peak_memory_mb=9216.0))
    transfer(t, 'a/cityscapes', 'cityscapes', in1k, {'mIoU': 76.0})
    transfer(t, 'b/cityscapes', 'cityscapes', in1k, {'mIoU': 75.0})    # same seed: conflict
    transfer(t, 'a/coco_2x', 'coco_2x', in1k, {}, finished=False)      # crashed
    open(os.path.join(t, 'a/coco_2x/FAILED'), 'w').write('exit status 1')
    transfer(t, 'a/coco_mocov2_1x', 'coco_mocov2_1x', in1k,
             {'coco/bbox_mAP': 0.401, 'coco/segm_mAP': 0.362})
    transfer(t, 'c/voc', 'voc', coco, {'mIoU': 70.5})
    # A task stopped by the transfer pre-flight: FAILED beside the export's source record.
    write(os.path.join(t, 'd', 'backbone.pth.source.json'), dict(source=coco, source_sha256='0' * 64))
    os.makedirs(os.path.join(t, 'd', 'voc'))
    open(os.path.join(t, 'd', 'voc', 'FAILED'), 'w').write('pre-flight: no data')
    transfer(t, 'full/voc', 'voc', full, {'mIoU': 65.25}, mmdet='3.2.0')  # other version
    transfer(t, 'byol/voc', 'voc', byol, {'mIoU': 60.0})
    write(os.path.join(root, 'r2o_imagenet_300e', 'eval_cub', 'cub_metrics.json'), dict(
        benchmark='cub', protocol='CUB-200-2011 test, K=5', checkpoint=in1k,
        metrics={'mIoU': 70.0}, finished=True))
    write(os.path.join(root, 'in100_full', 'eval_knn', 'knn_metrics.json'), dict(
        benchmark='knn', protocol='k-NN k=20', checkpoint=full, metrics={'top1': 66.5}, finished=True))
    out = str(tmp_path_factory.mktemp('results'))
    collected = write_tables([root], out, PUBLISHED)
    return collected, out


def cell(frame, row, benchmark, metric):
    match = frame[(frame.row == row) & (frame.benchmark == benchmark) & (frame.metric == metric)]
    assert len(match) == 1, (row, benchmark, metric, frame[['row', 'benchmark', 'metric']])
    return match.iloc[0]


def test_table1_cells_and_differences(tables):
    collected, out = tables
    frame = pd.read_csv(os.path.join(out, 'table1.csv'), dtype=str, keep_default_na=False)
    box = cell(frame, 'R2O (this code)', 'coco_1x', 'AP box')
    assert box.reproduced == '42.00' and float(box.published) == 41.7 and box.difference == '+0.30'
    assert str(box['world size']) == '8' and str(box['global batch']) == '64' and str(box.epochs) == '300'
    assert cell(frame, 'R2O (this code)', 'coco_1x', 'AP mask').difference == '-0.30'
    voc = cell(frame, 'R2O (this code)', 'voc', 'mIoU')
    assert voc.reproduced == '77.50 ± 0.71' and str(voc.runs) == '2' and voc.difference == '+0.20'
    # 95% CI 77.5 +- 12.706205 x 0.707107 / sqrt(2) = [71.15, 83.85]: 77.3 is inside, over
    # fine-tuning seeds only.
    assert voc['95% CI'] == '[71.15, 83.85]' and voc.varied == 'fine-tuning seed (n=2), one pretraining run'
    assert voc['vs published'] == ('published value inside the 95% CI over fine-tuning seeds (n=2) of one '
                                   'pretraining run: pretraining variance not measured')
    assert box['vs published'] == 'one value: no interval' and box.varied == 'one run: nothing varied'
    # Costs from the runs' own records: 128 GPUs x 30 h; the two VOC runs' mean.
    assert voc['pretraining cost'] == '3.84e+03 GPU-h, 4450 img/s, 20.0 GB/GPU'
    assert voc['downstream cost'] == '4 GPU-h per run, 60 img/s, 9.0 GB/GPU'
    assert box['downstream cost'] == 'not recorded'
    assert cell(frame, 'R2O (this code)', 'cityscapes', 'mIoU').reproduced == 'conflict'
    two_x = cell(frame, 'R2O (this code)', 'coco_2x', 'AP box')
    assert two_x.reproduced == 'not run' and two_x.published == 'not published'
    assert len(frame) == 6


def test_table1_markdown_opens_with_the_papers_layout(tables):
    _, out = tables
    lines = open(os.path.join(out, 'table1.md')).read().splitlines()
    assert lines[0].startswith('## Table 1')
    table = lines[2:lines.index('', 2)]
    assert table[0] == ('| method | COCO 1x AP box | COCO 1x AP mask | COCO 2x AP box | COCO 2x AP mask | VOC mIoU '
                        '| Cityscapes mIoU |')
    assert all(len(line.strip('|').split(' | ')) <= 8 for line in table)
    # Published rows of ImageNet-1k pretraining (results/published.csv), then this code's row:
    # one COCO run (n=1), two VOC seeds with their Student-t interval, the conflicting Cityscapes cell.
    assert table[2:] == [
        '| R2O (300 ep, published) | 41.7 | 38.3 | – | – | 77.3 | 76.6 |',
        '| BYOL (1000 ep, published) | 41.6 | 37.2 | – | – | 75.7 | 74.6 |',
        '| DetCon-B (1000 ep, published) | 42.7 | 38.2 | – | – | 77.3 | 77 |',
        '| R2O (this code) | 42.00, n=1 (41.7) | 38.00, n=1 (38.3) | not run | not run '
        '| 77.50 [71.15, 83.85], n=2 (77.3) | conflict |']
    text = '\n'.join(lines)
    detail = text[text.index('### Detail'):]
    assert '- **R2O (this code), VOC mIoU**: reproduced: 77.50 ± 0.71; published: 77.3; difference: +0.20' in detail
    assert 'global batch: 64' in detail and 'Cityscapes' in detail and 'COCO 2x' not in detail


def test_published_values_are_compared_only_for_the_exact_protocol(tmp_path):
    root = str(tmp_path / 'work_dirs')
    in1k = pretrain(root, 'r2o_imagenet_300e', 'r2o_imagenet_300e.py', 'ImageFolderUnlabeled')
    t = os.path.join(root, 'transfer')
    transfer(t, 'exact/cityscapes', 'cityscapes', in1k, {'mIoU': 76.0})
    transfer(t, 'shrunk/voc', 'voc', in1k, {'mIoU': 30.0},
             deviations=['batch: 4 (protocol: 16)', 'crop: (48, 48) (protocol: (513, 513))'])
    transfer(t, 'old/coco_1x', 'coco_1x', in1k, {'coco/bbox_mAP': 0.42, 'coco/segm_mAP': 0.38}, deviations=None)
    write_tables([root], str(tmp_path / 'out'), PUBLISHED)
    frame = pd.read_csv(tmp_path / 'out' / 'table1.csv', dtype=str, keep_default_na=False)
    exact = cell(frame, 'R2O (this code)', 'cityscapes', 'mIoU')
    assert exact['protocol check'] == "authors' protocol (exact)" and exact.difference == '-0.60'
    shrunk = cell(frame, 'R2O (this code)', 'voc', 'mIoU')
    assert shrunk['protocol check'] == ('deviates: batch: 4 (protocol: 16); '
                                        'crop: (48, 48) (protocol: (513, 513))')
    assert shrunk.difference == 'n/a (protocol deviates)'
    old = cell(frame, 'R2O (this code)', 'coco_1x', 'AP box')
    assert old['protocol check'] == 'not checked' and old.difference == 'n/a (protocol not checked)'
    ours = next(l for l in open(tmp_path / 'out' / 'table1.md') if l.startswith('| R2O (this code)'))
    assert ours.rstrip('\n') == ('| R2O (this code) | 42.00, n=1 ‡ (41.7) | 38.00, n=1 ‡ (38.3) | not run | not run '
                     '| 30.00, n=1 † (77.3) | 76.00, n=1 (76.6) |')


def test_other_tables(tables):
    _, out = tables
    t2 = pd.read_csv(os.path.join(out, 'table2.csv'), dtype=str, keep_default_na=False)
    assert cell(t2, 'R2O (this code)', 'voc', 'mIoU').reproduced == '70.50'
    assert cell(t2, 'R2O (this code)', 'voc', 'mIoU').published == 'not published'
    assert cell(t2, 'R2O (this code)', 'cityscapes', 'mIoU').reproduced == 'not run'
    t3 = pd.read_csv(os.path.join(out, 'table3.csv'), dtype=str, keep_default_na=False)
    cub = cell(t3, 'R2O (this code)', 'cub', 'mIoU')
    assert cub.reproduced == '70.00' and float(cub.published) == 71.6 and cub.difference == '-1.60'
    t4 = pd.read_csv(os.path.join(out, 'table4.csv'), dtype=str, keep_default_na=False)
    assert cell(t4, 'ImageNet-100: full', 'voc', 'mIoU').reproduced == '65.25'
    assert cell(t4, 'ImageNet-100: full', 'knn', 'top-1').reproduced == '66.50'
    assert cell(t4, 'ImageNet-100: byol', 'voc', 'mIoU').reproduced == '60.00'
    assert cell(t4, 'ImageNet-100: byol', 'knn', 'top-1').reproduced == 'not run'
    mocov2 = pd.read_csv(os.path.join(out, 'mocov2.csv'), dtype=str, keep_default_na=False)
    assert cell(mocov2, 'R2O (this code)', 'coco_mocov2_1x', 'AP box').reproduced == '40.10'


def test_issues_list_failures_conflicts_and_versions(tables):
    collected, out = tables
    issues = dict((text, where) for where, text in collected['issues'])
    where = {key: next(w for text, w in issues.items() if key in text)
             for key in ('coco_2x run failed', 'cityscapes mIoU: 2 runs claim this cell',
                         'mmdet 3.2.0 (this project pins 3.3.0)', 'voc transfer failed before it started')}
    # Each failure is filed under the table of the checkpoint it came from, once.
    assert where == {'coco_2x run failed': 'table1', 'cityscapes mIoU: 2 runs claim this cell': 'table1',
                     'mmdet 3.2.0 (this project pins 3.3.0)': 'table4',
                     'voc transfer failed before it started': 'table2'}
    markdown = open(os.path.join(out, 'table1.md')).read()
    assert 'Issues found:' in markdown and 'conflict' in markdown and 'not run' in markdown
    assert 'coco_2x run failed' in markdown and 'failed before it started' not in markdown
    assert 'coco_2x run failed' not in open(os.path.join(out, 'table2.md')).read()
    assert 'pre-flight: no data' in open(os.path.join(out, 'issues.md')).read()


def test_published_numbers_match_spec_section_6():
    published = pd.read_csv(PUBLISHED)
    expected = {
        ('R2O', 'coco_1x', 'AP box'): 41.7, ('R2O', 'coco_1x', 'AP mask'): 38.3,
        ('R2O', 'voc', 'mIoU'): 77.3, ('R2O', 'cityscapes', 'mIoU'): 76.6, ('R2O', 'cub', 'mIoU'): 71.6,
        ('BYOL', 'coco_1x', 'AP box'): 41.6, ('BYOL', 'coco_1x', 'AP mask'): 37.2,
        ('BYOL', 'voc', 'mIoU'): 75.7, ('BYOL', 'cityscapes', 'mIoU'): 74.6,
        ('DetCon-B', 'coco_1x', 'AP box'): 42.7, ('DetCon-B', 'coco_1x', 'AP mask'): 38.2,
        ('DetCon-B', 'voc', 'mIoU'): 77.3, ('DetCon-B', 'cityscapes', 'mIoU'): 77.0,
        ('SlotCon', 'coco_mocov2_1x', 'AP box'): 41.8, ('SlotCon', 'coco_mocov2_1x', 'AP mask'): 37.8,
        ('BYOL (mmselfsup)', 'coco_mocov2_1x', 'AP box'): 40.9,
        ('BYOL (mmselfsup)', 'coco_mocov2_1x', 'AP mask'): 36.8,
        ('BYOL (mmselfsup)', 'voc_mmselfsup', 'mIoU'): 67.16,
        ('MoCo v2 (mmselfsup)', 'coco_mocov2_1x', 'AP box'): 40.2,
        ('MoCo v2 (mmselfsup)', 'coco_mocov2_1x', 'AP mask'): 36.1,
        ('MoCo v2 (mmselfsup)', 'voc_mmselfsup', 'mIoU'): 67.55,
    }
    # (The ImageNet classification rows are not SPEC's: tests/results/test_model_card.py checks them.)
    got = {(r.method, r.benchmark, r.metric): r.value for r in published.itertuples()
           if not r.benchmark.startswith('imagenet')}
    assert got == expected
    epochs = {r.method: r.epochs for r in published.itertuples()}
    assert epochs == {'R2O': 300, 'BYOL': 1000, 'DetCon-B': 1000, 'SlotCon': 200, 'BYOL (mmselfsup)': 200,
                      'MoCo v2 (mmselfsup)': 200}
    assert published.protocol.notna().all() and published.source.notna().all()


def test_collect_results_tool_writes_figures(tables, tmp_path):
    _, out = tables
    root = os.path.dirname(os.path.dirname(pd.read_csv(os.path.join(out, 'table1.csv')).checkpoint[0]))
    result = subprocess.run([sys.executable, 'tools/collect_results.py', root, '--out', str(tmp_path),
                             '--latex'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert '## Table 1' in result.stdout
    for name in ('table1.md', 'table1.csv', 'table1.tex', 'table4.csv', 'reproduced_vs_published.png',
                 'k_schedule.png'):
        assert (tmp_path / name).stat().st_size > 0
    missing = subprocess.run([sys.executable, 'tools/collect_results.py', str(tmp_path / 'nope')],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and 'not found' in missing.stderr


def test_probe_seeds_give_confidence_intervals_and_row_differences(tmp_path):
    root = str(tmp_path / 'work_dirs')
    r2o = pretrain(root, 'r2o', 'r2o_tiny_cpu.py', 'ImageList', epochs=30)
    byol = pretrain(root, 'byol', 'r2o_tiny_cpu.py', 'ImageList', epochs=30, mask_source='whole_image')
    for name, checkpoint, values in (('r2o', r2o, [40, 41, 42]), ('byol', byol, [30, 31, 32])):
        write(os.path.join(root, name, 'probe', 'probe_metrics.json'), dict(
            benchmark='voc_probe', protocol='dense linear probe', checkpoint=checkpoint, finished=True,
            runs=[{'seed': s, 'mIoU': v} for s, v in enumerate(values)]))
    write_tables([root], str(tmp_path / 'out'), PUBLISHED)
    # Pretrained on a folder of photographs (ImageList): none of the paper's data, so 'other'; the
    # paper-data probes table holds nothing and is not written.
    assert not (tmp_path / 'out' / 'probes.csv').exists() and (tmp_path / 'out' / 'other.csv').exists()
    frame = pd.read_csv(tmp_path / 'out' / 'other.csv', dtype=str, keep_default_na=False)
    probe = cell(frame, 'R2O (this code)', 'voc_probe', 'mIoU')
    assert probe.published == 'not published'
    # mean 41, std 1, half = t(0.975, 2) x 1 / sqrt(3) = 4.302653 / 1.732051 = 2.484138
    assert probe.reproduced == '41.00 ± 1.00' and probe['95% CI'] == '[38.52, 43.48]' and str(probe.runs) == '3'
    assert probe.n == '3' and probe.varied == 'probe seed (n=3), one pretraining run'
    markdown = (tmp_path / 'out' / 'other.md').read_text()
    assert markdown.startswith("## Other pretraining data (none of the paper's tables")
    assert ('voc_probe mIoU: BYOL (this code) - R2O (this code) = -10.00, 95% CI [-12.27, -7.73]: '
            'exceeds the probe-seed spread of one pretraining run each (n=3 and 3): '
            'pretraining variance not measured') in markdown
    assert '| values |' not in markdown and 'separated' not in markdown


def test_spread_over_pretraining_seeds_is_the_one_a_verdict_uses(tmp_path):
    """Three pretraining seeds per method, two probe seeds each: the cell's
    values are the three per-checkpoint means, and the verdict names them."""
    root = str(tmp_path / 'work_dirs')
    probes = {'r2o': [[40, 42], [43, 45], [46, 48]], 'byol': [[30, 32], [31, 33], [32, 34]]}
    for method, per_seed in probes.items():
        for seed, values in enumerate(per_seed):
            checkpoint = pretrain(root, f'{method}_seed{seed}', 'r2o_tiny_cpu.py', 'ImageList', epochs=30,
                                  mask_source='whole_image' if method == 'byol' else 'kmeans', seed=seed)
            machine = {'name': 'CPU B' if (method, seed) == ('r2o', 2) else 'CPU A'}
            write(os.path.join(root, f'{method}_seed{seed}', 'probe', 'probe_metrics.json'), dict(
                benchmark='voc_probe', protocol='dense linear probe', checkpoint=checkpoint, finished=True,
                machine=machine, runs=[{'seed': s, 'mIoU': v} for s, v in enumerate(values)]))
    write_tables([root], str(tmp_path / 'out'), PUBLISHED)
    frame = pd.read_csv(tmp_path / 'out' / 'other.csv', dtype=str, keep_default_na=False)
    r2o = cell(frame, 'R2O (this code)', 'voc_probe', 'mIoU')
    # Means per checkpoint 41, 44, 47: mean 44, std 3, half = 4.302653 x 3 / sqrt(3) = 7.452413.
    assert r2o.reproduced == '44.00 ± 3.00' and r2o['95% CI'] == '[36.55, 51.45]'
    assert r2o.n == '3' and r2o.runs == '6'
    assert r2o.varied == 'pretraining seed (n=3) x probe seed (n=2); 2 machines'
    assert r2o.machine == 'CPU A; CPU B'
    byol = cell(frame, 'BYOL (this code)', 'voc_probe', 'mIoU')
    assert byol.reproduced == '32.00 ± 1.00' and byol.varied == 'pretraining seed (n=3) x probe seed (n=2)'
    # Welch: se = sqrt(9/3 + 1/3) = 1.825742, dof = (10/3)^2 / (3^2/2 + (1/3)^2/2) = 2.439024,
    # t(0.975, 2.439024) = 3.727... -> half 6.80...; -12 +- 6.8 excludes 0.
    markdown = (tmp_path / 'out' / 'other.md').read_text()
    line = next(l for l in markdown.splitlines() if 'BYOL (this code) - R2O (this code)' in l)
    assert '= -12.00' in line and line.endswith('exceeds the pretraining-seed spread (n=3 and 3)')
    low, high = [float(v) for v in line.split('95% CI [')[1].split(']')[0].split(', ')]
    from scipy import stats
    half = stats.t.ppf(0.975, (10 / 3) ** 2 / (4.5 + 1 / 18)) * (10 / 3) ** 0.5
    assert low == pytest.approx(-12 - half, abs=0.006) and high == pytest.approx(-12 + half, abs=0.006)


def test_spread_verdict_wording():
    from r2o_mm.results.collect import spread_verdict
    assert spread_verdict('pretraining seed', 3, 'pretraining seed', 4, False) == \
        'within the pretraining-seed spread (n=3 and 4)'
    assert spread_verdict('fine-tuning seed', 2, 'fine-tuning seed', 2, True) == \
        ('exceeds the fine-tuning-seed spread of one pretraining run each (n=2 and 2): '
         'pretraining variance not measured')
    assert spread_verdict('pretraining seed', 3, 'probe seed', 5, True) == (
        'exceeds the spread over pretraining seeds (n=3) and probe seeds (n=5): '
        'pretraining variance not measured for the side with one pretraining run')
    assert spread_verdict('pretraining seed', 3, 'initialisation seed', 3, False) == \
        'within the spread over pretraining seeds (n=3) and initialisation seeds (n=3)'
    assert spread_verdict('probe seed', 1, 'probe seed', 5, None) == 'one run on a side: no interval'


def test_a_run_on_other_data_is_not_filed_under_a_paper_table(tmp_path):
    """A pretraining on data/tiny (ImageList) transferred to VOC: 'other
    pretraining data', never ImageNet-1k's Table 1 beside 77.3."""
    root = str(tmp_path / 'work_dirs')
    tiny = pretrain(root, 'tiny', 'r2o_tiny_cpu.py', 'ImageList', epochs=2)
    transfer(os.path.join(root, 'transfer'), 'tiny/voc', 'voc', tiny, {'mIoU': 20.0})
    collected = write_tables([root], str(tmp_path / 'out'), PUBLISHED)
    assert set(collected['tables']['table1'].reproduced) == {'not run'}
    # Only the tables a run reached are written; the others are named once.
    assert collected['written'] == ['other'] and not (tmp_path / 'out' / 'table1.csv').exists()
    assert collected['untouched'] == ['table1', 'table2', 'table3', 'table4', 'mocov2', 'probes', 'linear']
    other = cell(pd.read_csv(tmp_path / 'out' / 'other.csv', dtype=str, keep_default_na=False),
                 'R2O (this code)', 'voc', 'mIoU')
    assert other.reproduced == '20.00' and other.published == 'not published'


def test_a_crash_during_training_is_told_from_one_before_it(tmp_path):
    from r2o_mm.results.collect import failure_stage
    folder = tmp_path / 'voc'
    folder.mkdir()
    assert failure_stage(str(folder), 'pre-flight: no data') == 'failed before it started (pre-flight: no data)'
    assert failure_stage(str(folder), 'exit status 1; log: x') == \
        'failed at start-up, before training (exit status 1; log: x)'
    (folder / 'transfer.log').write_text(
        '12/01 10:00:00 - mmengine - INFO - Iter(train) [ 10/30000]  lr: 1e-02\n'
        '12/01 10:00:05 - mmengine - INFO - Iter(train) [ 20/30000]  lr: 1e-02\nRuntimeError: boom\n')
    assert failure_stage(str(folder), 'exit status 1; log: x') == \
        'crashed during training (last logged: Iter(train) [ 20/30000]; exit status 1; log: x)'


def test_rows_never_mix_recipes_snapshots_or_checkpoints_without_a_record(tmp_path):
    """Two seeds of one 300-epoch recipe (their epoch_300 and one epoch_100
    snapshot), a 100-epoch recipe of the same config, and two checkpoints
    without pretrain_info.json, all transferred to VOC: five rows, each
    over one recipe at one snapshot, the unrecorded ones named by path."""
    root = str(tmp_path / 'work_dirs')
    long_recipe, short_recipe = 'a' * 16, 'b' * 16
    seed0 = pretrain(root, 's0', 'r2o_imagenet_300e.py', 'ImageFolderUnlabeled', seed=0, recipe=long_recipe)
    seed1 = pretrain(root, 's1', 'r2o_imagenet_300e.py', 'ImageFolderUnlabeled', seed=1, recipe=long_recipe)
    seed0_100 = os.path.join(root, 's0', 'epoch_100.pth')
    short = pretrain(root, 'short', 'r2o_imagenet_300e.py', 'ImageFolderUnlabeled', epochs=100, seed=0,
                     recipe=short_recipe)
    downloaded = os.path.join(root, 'downloads', 'r2o_torchvision.pth')
    copied = os.path.join(root, 'copied', 'epoch_300.pth')
    t = os.path.join(root, 'transfer')
    for name, checkpoint, value in (('s0', seed0, 77.0), ('s1', seed1, 78.0), ('s0_100', seed0_100, 70.0),
                                    ('short', short, 74.0), ('downloaded', downloaded, 76.0),
                                    ('copied', copied, 75.0)):
        transfer(t, f'{name}/voc', 'voc', checkpoint, {'mIoU': value})
    write_tables([root], str(tmp_path / 'out'), PUBLISHED)
    frame = pd.read_csv(tmp_path / 'out' / 'table1.csv', dtype=str, keep_default_na=False)
    voc = frame[frame.benchmark == 'voc'].set_index('row')
    final = 'R2O (this code) (r2o_imagenet_300e, epoch 300, recipe aaaaaaaa)'
    assert dict(voc.reproduced) == {
        final: '77.50 ± 0.71',
        'R2O (this code) (r2o_imagenet_300e, epoch 100, recipe aaaaaaaa)': '70.00',
        'R2O (this code) (r2o_imagenet_300e, epoch 100, recipe bbbbbbbb)': '74.00',
        f'no pretraining record: {downloaded}': '76.00',
        f'no pretraining record: {copied}': '75.00'}
    # The interval of the final row is over the two pretraining seeds of one recipe, nothing else.
    assert voc.loc[final, 'varied'] == 'pretraining seed (n=2)' and voc.loc[final, 'snapshot'] == 'epoch 300'
    assert voc.loc[final, 'checkpoint'] == f'{seed0}; {seed1}' and voc.loc[final, 'difference'] == '+0.20'
    # Without a record there is nothing to compare with a published number.
    assert voc.loc[f'no pretraining record: {copied}', 'difference'] == ''
    assert voc.loc[f'no pretraining record: {copied}', 'pretraining'] == 'unknown (no pretrain_info.json)'


def test_a_tiny_runs_transfer_and_the_demos_probes_are_two_rows(tmp_path):
    """The case a user met: a tiny pretraining fine-tuned on VOC beside the
    demo's probed encoders (another recipe of the same config): one row each."""
    root = str(tmp_path / 'work_dirs')
    tiny = pretrain(root, 'r2o_tiny_cpu', 'r2o_tiny_cpu.py', 'ImageList', epochs=2, recipe='1' * 16)
    demo = pretrain(root, 'demo/pretrain/r2o_s0', 'r2o_tiny_cpu.py', 'ImageList', epochs=30, recipe='2' * 16)
    transfer(os.path.join(root, 'transfer'), 'tiny/voc', 'voc', tiny, {'mIoU': 20.0})
    write(os.path.join(root, 'demo', 'probes', 'r2o_s0', 'probe_metrics.json'), dict(
        benchmark='voc_probe', protocol='dense linear probe', checkpoint=demo, finished=True,
        runs=[{'seed': 0, 'mIoU': 30.0}]))
    write_tables([root], str(tmp_path / 'out'), PUBLISHED)
    frame = pd.read_csv(tmp_path / 'out' / 'other.csv', dtype=str, keep_default_na=False)
    ran = frame[frame.reproduced != 'not run']
    assert sorted(zip(ran.row, ran.benchmark, ran.reproduced)) == [
        ('R2O (this code) (r2o_tiny_cpu, epoch 2)', 'voc', '20.00'),
        ('R2O (this code) (r2o_tiny_cpu, epoch 30)', 'voc_probe', '30.00')]


def test_collected_tables_go_under_the_work_dir_and_nothing_new_into_the_repository(tables, tool_main):
    """Without --out the tables go to <first work dir>/results; the
    repository's results/ keeps its committed files only."""
    from conftest import untracked_in_repository
    _, out = tables
    root = os.path.dirname(os.path.dirname(pd.read_csv(os.path.join(out, 'table1.csv')).checkpoint[0]))
    before = untracked_in_repository()
    code, lines = tool_main('collect_results.py', [root, '--quiet'])
    assert code == 0 and lines[-1].endswith(f' to {root}/results; no file for probes, linear, other: the runs '
                                            'collected reach none of their cells')
    assert {'table1.md', 'table1.csv', 'issues.md', 'k_schedule.png'} <= set(os.listdir(os.path.join(root, 'results')))
    if before is not None:
        assert untracked_in_repository() - before == set()
    # What the repository's results/ holds is what git tracks.
    tracked = subprocess.run(['git', 'ls-files', 'results'], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert tracked == ['results/benchmarks.md', 'results/published.csv'] or before is None
