"""Collate finished runs into the paper's tables, next to the published numbers.

Inputs, found recursively under the work dirs given:

* ``metrics.json`` / ``run_info.json`` / ``FAILED`` of transfer runs
  (``tools/transfer_run.py``), ``cub_metrics.json`` (``tools/eval_cub.py``),
  ``knn_metrics.json`` (``tools/eval_knn.py``);
* ``pretrain_info.json`` next to the pretraining checkpoint each result names,
  which says which table and row the result belongs to.

Every cell is (table, row, benchmark, metric). A row holds the runs of one
pretraining recipe (config fingerprint without seeds), one data set and one
snapshot (``epoch_100.pth`` and ``epoch_300.pth`` of one run are two rows);
several groups of one method get labels that tell them apart, and a
checkpoint without ``pretrain_info.json`` is a row of its own, named by its
path. Several runs in one cell with different seeds are averaged (mean and
standard deviation); runs that claim
the same cell with the same seed are a conflict, listed under "issues found"
and not picked. Cells without a finished run say "not run" (or "failed").
"""
from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .statistics import compare, summarise

PINNED = {'mmdet': '3.3.0', 'mmseg': '1.2.2', 'mmpretrain': '1.2.0', 'mmengine': '0.10.7'}

# table -> (title, [(benchmark, metric)])
TABLES = {
    'table1': ('Table 1: ImageNet-1k pretraining, transfer to COCO, VOC and Cityscapes',
               [('coco_1x', 'AP box'), ('coco_1x', 'AP mask'), ('coco_2x', 'AP box'), ('coco_2x', 'AP mask'),
                ('voc', 'mIoU'), ('cityscapes', 'mIoU')]),
    'table2': ('Table 2: COCO pretraining, transfer to VOC and Cityscapes',
               [('voc', 'mIoU'), ('cityscapes', 'mIoU')]),
    'table3': ('Table 3: CUB-200-2011 unsupervised foreground/background segmentation',
               [('cub', 'mIoU')]),
    'table4': ('Table 4: ImageNet-100 ablation (VOC transfer and k-NN)',
               [('voc', 'mIoU'), ('knn', 'top-1')]),
    'mocov2': ('COCO with the MoCo/mmselfsup protocol (for comparison with other methods\' tables)',
               [('coco_mocov2_1x', 'AP box'), ('coco_mocov2_1x', 'AP mask')]),
    'probes': ('Frozen probes: dense linear probe, VOC layout (no fine-tuning)', [('voc_probe', 'mIoU')]),
    # No table of the paper: the evaluations every SSL comparison reports (mmpretrain).
    'linear': ('ImageNet-1k classification (mmpretrain): linear on the frozen encoder, semi-supervised 1% and 10%',
               [('imagenet_linear', 'top-1'), ('imagenet_linear', 'top-5'), ('imagenet_semi_1pct', 'top-1'),
                ('imagenet_semi_1pct', 'top-5'), ('imagenet_semi_10pct', 'top-1'), ('imagenet_semi_10pct', 'top-5')]),
    # Pretrained on data none of the paper's tables used (data/tiny, generated scenes, your own folder).
    'other': ("Other pretraining data (none of the paper's tables: no published numbers to compare)",
              [('coco_1x', 'AP box'), ('coco_1x', 'AP mask'), ('voc', 'mIoU'), ('cityscapes', 'mIoU'),
               ('cub', 'mIoU'), ('knn', 'top-1'), ('voc_probe', 'mIoU'), ('imagenet_linear', 'top-1')]),
}
# The pretraining dataset classes of the paper's tables; any other is 'other'.
_PAPER_DATASETS = ('ImageFolderUnlabeled', 'CocoUnlabeled')
# How each result file's metrics become (benchmark, metric) values in percent.
_METRIC_KEYS = {
    'coco': [('AP box', ('coco/bbox_mAP', 'bbox_mAP'), 100.0), ('AP mask', ('coco/segm_mAP', 'segm_mAP'), 100.0)],
    'seg': [('mIoU', ('mIoU',), 1.0)],
    'cub': [('mIoU', ('mIoU',), 1.0)],
    'knn': [('top-1', ('top1',), 1.0)],
    'probe': [('mIoU', ('mIoU',), 1.0)],
    # mmpretrain's Accuracy metric, already in percent.
    'cls': [('top-1', ('accuracy/top1',), 1.0), ('top-5', ('accuracy/top5',), 1.0)],
}


@dataclass
class Result:
    path: str
    benchmark: str
    values: dict            # metric -> value (percent)
    protocol: str
    checkpoint: str
    seed: object = None
    world_size: object = None
    global_batch: object = None
    versions: dict = field(default_factory=dict)
    # Fields in which the run differs from its released protocol ([] = exact);
    # None when the run did not record them (evaluations without fine-tuning,
    # or runs from before the check).
    deviations: list | None = None
    # What its seed varied ('fine-tuning seed', 'probe seed', or 'no seed' for
    # deterministic evaluations), and the machine it ran on (short name).
    seed_source: str = 'no seed'
    machine: str = ''
    cost: dict | None = None  # device-hours, images/s, peak memory of the run


def cost_text(costs: list) -> str:
    """'0.25 GPU-h, 310 img/s, 7.9 GB/GPU' (the mean over the runs that
    recorded one), or 'not recorded'."""
    costs = [c for c in costs if c]
    if not costs:
        return 'not recorded'
    gpu = costs[0].get('unit') == 'GPU-hours'
    hours = float(np.mean([c['device_hours'] for c in costs]))
    parts = [f"{hours:.3g} {'GPU' if gpu else 'CPU process'}-h" + (' per run' if len(costs) > 1 else '')]
    speeds = [c['images_per_second'] for c in costs if c.get('images_per_second')]
    if speeds:
        parts.append(f'{np.mean(speeds):.0f} img/s')
    parts.append(f"{max(c['peak_memory_mb'] for c in costs) / 1024:.1f} GB/{'GPU' if gpu else 'process'}")
    return ', '.join(parts)


def _machine_name(data: dict) -> str:
    machine = data.get('machine')
    return machine.get('name', '') if isinstance(machine, dict) else ''


def _load_json(path):
    with open(path) as handle:
        return json.load(handle)


def _values(kind: str, metrics: dict) -> dict | None:
    values = {}
    for name, keys, scale in _METRIC_KEYS[kind]:
        key = next((k for k in keys if k in metrics), None)
        if key is None:
            return None
        values[name] = float(metrics[key]) * scale
    return values


def read_results(work_dirs) -> tuple[list[Result], list[str]]:
    """All finished downstream results, and the issues met on the way as
    (table or None, text): a failed run is filed under the table its
    checkpoint belongs to."""
    results, issues = [], []
    files = sorted({f for root in work_dirs for f in glob.glob(os.path.join(root, '**', '*.json'), recursive=True)})
    for path in files:
        name = os.path.basename(path)
        folder = os.path.dirname(path)
        if name == 'run_info.json' and not os.path.exists(os.path.join(folder, 'metrics.json')):
            info = _load_json(path)
            task = info.get('task', 'transfer')
            if os.path.exists(os.path.join(folder, 'FAILED')):
                with open(os.path.join(folder, 'FAILED')) as handle:
                    state = failure_stage(folder, handle.read().strip())
            else:
                state = 'did not finish'
            issues.append((_table_of_run(task, info.get('checkpoint', '')),
                           f'{folder}: {task} run {state} (no metrics.json)'))
            continue
        if name not in ('metrics.json', 'cub_metrics.json', 'knn_metrics.json', 'probe_metrics.json'):
            continue
        try:
            data = _load_json(path)
        except (OSError, json.JSONDecodeError) as error:
            issues.append((None, f'{path}: unreadable ({error})'))
            continue
        if not data.get('finished'):
            issues.append((None, f'{path}: run did not finish'))
            continue
        if name == 'probe_metrics.json':  # one result per seed
            for run in data.get('runs', []):
                results.append(Result(path, 'voc_probe', {'mIoU': float(run['mIoU'])}, data.get('protocol', ''),
                                      data.get('checkpoint', ''), run.get('seed'), seed_source='probe seed',
                                      machine=_machine_name(data)))
            continue
        if name == 'metrics.json':
            task = data.get('task', '')
            kind = 'coco' if task.startswith('coco') else 'cls' if task.startswith('imagenet') else 'seg'
            benchmark = task
        else:
            kind = benchmark = data.get('benchmark', name.split('_')[0])
        values = _values(kind, data.get('metrics', {}))
        if values is None:
            issues.append((None, f'{path}: metrics {sorted(data.get("metrics", {}))} not recognised for {benchmark}'))
            continue
        versions = {k: data[k] for k in PINNED if k in data}
        for package, version in versions.items():
            if version != PINNED[package]:
                issues.append((_table_of_run(benchmark, data.get('checkpoint', '')),
                               f'{path}: produced with {package} {version} (this project pins '
                               f'{PINNED[package]}); kept, compare with care'))
        results.append(Result(path, benchmark, values, data.get('protocol', ''), data.get('checkpoint', ''),
                              data.get('seed'), data.get('world_size'), data.get('global_batch'), versions,
                              data.get('protocol_deviations'),
                              seed_source='fine-tuning seed' if name == 'metrics.json' else 'no seed',
                              machine=_machine_name(data), cost=data.get('cost')))
    for marker in sorted({f for root in work_dirs for f in glob.glob(os.path.join(root, '**', 'FAILED'),
                                                                     recursive=True)}):
        folder = os.path.dirname(marker)
        if os.path.exists(os.path.join(folder, 'run_info.json')):
            continue
        with open(marker) as handle:
            reason = handle.read().strip()
        source = os.path.join(os.path.dirname(folder), 'backbone.pth.source.json')
        checkpoint = _load_json(source).get('source', '') if os.path.isfile(source) else ''
        task = os.path.basename(folder)
        issues.append((_table_of_run(task, checkpoint), f'{folder}: {task} transfer {failure_stage(folder, reason)}'))
    return results, issues


_TRAIN_ITERATION = re.compile(r'(?:Iter|Epoch)\(train\)\s*\[[^\]]*\](?:\[[^\]]*\])?')


def failure_stage(folder: str, reason: str) -> str:
    """When a failed transfer run stopped, in words: in the pre-flight
    (``FAILED`` says so), during training (its log has training iterations:
    the last one logged is named), or at start-up before training."""
    if reason.startswith('pre-flight'):
        return f'failed before it started ({reason})'
    logged = None
    for log in sorted(glob.glob(os.path.join(folder, 'transfer*.log'))):
        with open(log, errors='replace') as handle:
            for line in handle:
                found = _TRAIN_ITERATION.search(line)
                if found:
                    logged = found.group(0)
    if logged:
        return f'crashed during training (last logged: {logged}; {reason})'
    return f'failed at start-up, before training ({reason})'


def _table_of_run(benchmark: str, checkpoint: str) -> str | None:
    """The table a (failed) run of ``benchmark`` from ``checkpoint`` belongs to."""
    if not checkpoint:
        return None
    placements, _ = place(Result('', benchmark, {}, '', checkpoint))
    return placements[0][0]


def pretraining_of(checkpoint: str) -> dict | None:
    info_path = os.path.join(os.path.dirname(checkpoint), 'pretrain_info.json')
    return _load_json(info_path) if os.path.isfile(info_path) else None


def _is_imagenet100(info: dict) -> bool:
    return ('imagenet100' in os.path.splitext(info.get('config', ''))[0]
            or '100' in os.path.basename(info.get('subset_file') or ''))


def method_label(info: dict) -> str:
    """The row a pretraining run fills (pretrain_info.json): R2O or BYOL in
    this code, 'random init', or the Table 4 variant of an ImageNet-100 run."""
    if info.get('dataset') == 'ImageFolderUnlabeled' and _is_imagenet100(info):
        return os.path.splitext(info.get('config', ''))[0].replace('r2o_imagenet100_', 'ImageNet-100: ')
    return info.get('method') or ('BYOL (this code)' if info.get('mask_source') == 'whole_image'
                                  else 'R2O (this code)')


_SNAPSHOT = re.compile(r'(epoch|iter)_(\d+)\.pth$')


def snapshot_of(checkpoint: str) -> str:
    """Which snapshot of its run a checkpoint is, from the name the
    CheckpointHook gives it: 'epoch 100', 'iter 5000', else the file name."""
    found = _SNAPSHOT.search(os.path.basename(checkpoint))
    return f'{found.group(1)} {int(found.group(2))}' if found else os.path.basename(checkpoint)


def recipe_key(info: dict) -> tuple:
    """What the weights of a pretraining depend on, but for its seeds: the
    recipe fingerprint PretrainInfoHook records (model, data pipeline,
    optimiser, schedule and training hooks, without seeds, paths and
    monitoring), the data and the global batch. A record written before the
    fingerprint falls back on the fields it has."""
    data = (info.get('dataset'), info.get('data_root'), info.get('subset_file'))
    recipe = info.get('recipe_sha256') or json.dumps(
        {k: info.get(k) for k in ('config', 'mask_source', 'superpixel_source', 'depth', 'epochs', 'k_schedule',
                                  'method')}, sort_keys=True, default=str)
    return recipe, data, info.get('global_batch')


def place(result: Result) -> tuple[list[tuple[str, str]], dict]:
    """[(table, method label)] for the result, and a description of its
    pretraining, with ``group``: the runs a row may hold together (one recipe,
    one data set, one snapshot; any seed). A checkpoint without a pretraining
    record is its own group, labelled with its path."""
    info = pretraining_of(result.checkpoint)
    snapshot = snapshot_of(result.checkpoint) if result.checkpoint else ''
    if info is None:
        label = f'no pretraining record: {result.checkpoint or "unknown checkpoint"}'
        pretraining = dict(data='unknown (no pretrain_info.json)', epochs=None, seed=None, snapshot=snapshot,
                           group=('no record', result.checkpoint), config='')
        return [(_table_for(result.benchmark, 'table1'), label)], pretraining
    method = method_label(info)
    data = info.get('dataset', '')
    subset = info.get('subset_file') or ''
    pretraining = dict(data=f"{data}{': ' + os.path.basename(subset) if subset else ''} ({info.get('data_root')})",
                       epochs=info.get('epochs'), seed=info.get('seed'), cost=info.get('cost'),
                       seed_kind='initialisation seed' if method == 'random init' else 'pretraining seed',
                       snapshot=snapshot, group=(recipe_key(info), snapshot), **_recipe_names(info))
    if data not in _PAPER_DATASETS:
        table = 'other'
    elif data == 'CocoUnlabeled':
        table = 'table2'
    elif _is_imagenet100(info):
        table = 'table4'
    else:
        table = 'table1'
    return [(_table_for(result.benchmark, table), method)], pretraining


def _recipe_names(info: dict) -> dict:
    """The config's stem and the recipe fingerprint's first 8 digits: what a row label adds (:func:`row_labels`)."""
    return dict(config=os.path.splitext(os.path.basename(info.get('config') or ''))[0],
                recipe=(info.get('recipe_sha256') or '')[:8])


def row_labels(groups: dict) -> dict:
    """{(method, group): row label} for one table. A method with one group
    keeps its name; several groups of one method (two recipes, two snapshots
    of one run, two data sets) get the method's name followed by what tells
    them apart: config, snapshot, then the recipe fingerprint and the data."""
    labels = {}
    by_method: dict = {}
    for (method, group), pretraining in groups.items():
        by_method.setdefault(method, []).append((group, pretraining))
    for method, members in by_method.items():
        if len(members) == 1 or method.startswith('no pretraining record'):
            labels.update({(method, group): method for group, _ in members})
            continue
        fields = (lambda p: p['config'], lambda p: p['snapshot'], lambda p: f"recipe {p.get('recipe') or '?'}",
                  lambda p: p['data'])
        for used in range(1, len(fields) + 1):
            names = {group: ', '.join(str(f(p)) for f in fields[:used] if f(p)) for group, p in members}
            if len(set(names.values())) == len(names):
                break
        labels.update({(method, group): f'{method} ({names[group]})' for group, _ in members})
    return labels


def _table_for(benchmark: str, by_pretraining: str) -> str:
    if by_pretraining == 'other':
        return 'other'
    if benchmark == 'cub':
        return 'table3'
    if benchmark == 'coco_mocov2_1x':
        return 'mocov2'
    if benchmark == 'knn':
        return 'table4'
    if benchmark == 'voc_probe':
        return 'probes'
    if benchmark.startswith('imagenet'):
        return 'linear'
    return by_pretraining


# The pretraining data of each table's published numbers.
_TABLE_DATA = {'table1': 'ImageNet-1k', 'table2': 'COCO', 'table3': 'ImageNet-1k', 'table4': 'ImageNet-100',
               'mocov2': 'ImageNet-1k', 'probes': 'ImageNet-1k', 'linear': 'ImageNet-1k', 'other': None}


def _published(published: pd.DataFrame, table: str, label: str, benchmark: str, metric: str):
    """(value, description, protocol) of the published number for this cell:
    same method (R2O, or BYOL for the BYOL baseline), pretraining data,
    benchmark and metric."""
    method = next((m for m in ('R2O', 'BYOL') if label.startswith(m)), None)
    rows = published[(published.method == method) & (published.benchmark == benchmark) &
                      (published.metric == metric) & (published.pretraining_data == _TABLE_DATA[table])]
    if rows.empty:
        return None, '', ''
    row = rows.iloc[0]
    source = f'{row.method}, {row.pretraining_data}, {row.epochs} ep: {row.source}'
    if pd.isna(row.value):  # a row that records that none is published, and where that was looked up
        return None, source, row.protocol
    return float(row.value), source, row.protocol


def _comparable(protocol: str, published_protocol: str) -> bool:
    """Same protocol family (first word: DetCon, CUB-200-2011, ...) and not shrunk."""
    if not published_protocol or 'shrunk' in protocol:
        return False
    return protocol.split()[0] == published_protocol.split()[0]


EXACT = "authors' protocol (exact)"  # the protocol check of a run that followed the released protocol


def protocol_check(runs: list[Result]) -> str:
    """"authors' protocol (exact)", the deviations, or why it is unknown."""
    if any(r.deviations is None for r in runs):
        transfer = any(os.path.basename(r.path) == 'metrics.json' for r in runs)
        return 'not checked' if transfer else "this project's tool"
    found = sorted({d for r in runs for d in r.deviations})
    return EXACT if not found else 'deviates: ' + '; '.join(found)


def build_tables(work_dirs, published: pd.DataFrame) -> tuple[dict, list[str]]:
    """{table: DataFrame (long format)} and the issues found."""
    results, issues = read_results(work_dirs)
    placed = []
    for result in results:
        placements, pretraining = place(result)
        for table, method in placements:
            if result.benchmark not in {b for b, _ in TABLES[table][1]}:
                issues.append((table, f'{result.path}: {result.benchmark} is not a benchmark of {table}; ignored'))
                continue
            placed.append((table, method, result, pretraining))
    groups: dict = {}  # table -> {(method, group): pretraining}
    for table, method, _, pretraining in placed:
        groups.setdefault(table, {})[(method, pretraining['group'])] = pretraining
    labels = {table: row_labels(found) for table, found in groups.items()}
    cells: dict = {}
    for table, method, result, pretraining in placed:
        label = labels[table][(method, pretraining['group'])]
        for metric, value in result.values.items():
            cells.setdefault((table, label, result.benchmark, metric), []).append((result, pretraining, value))
    tables = {}
    for table, (_title, columns) in TABLES.items():
        labels = sorted({label for (t, label, _, _) in cells if t == table}) or ['R2O (this code)']
        rows = []
        for label in labels:
            for benchmark, metric in columns:
                runs = cells.get((table, label, benchmark, metric), [])
                rows.append(_cell_row(table, label, benchmark, metric, runs, published, issues))
        tables[table] = pd.DataFrame(rows)
    return tables, sorted(set(issues), key=lambda issue: (issue[0] or '', issue[1]))


# Sources of variance that retrain the encoder: a verdict over one of these
# says whether a difference survives reseeding the pretraining.
OUTER_SOURCES = ('pretraining seed', 'pretraining run', 'initialisation seed')


def spread(runs) -> dict:
    """The values of a cell over its outermost source of variance, and words
    for it. Runs from several pretraining checkpoints: one value per
    checkpoint (the mean over its downstream seeds), varied by 'pretraining
    seed' (or 'pretraining run' when the checkpoints share a seed). One
    checkpoint: its downstream runs, varied by their own seed ('fine-tuning
    seed', 'probe seed'), and the pretraining variance is not measured."""
    by_checkpoint: dict = {}
    for result, pretraining, value in runs:
        by_checkpoint.setdefault(result.checkpoint, (pretraining.get('seed'), []))[1].append(value)
    kind = runs[0][1].get('seed_kind', 'pretraining seed')
    inner = runs[0][0].seed_source
    counts = sorted(len(values) for _, values in by_checkpoint.values())
    inner_n = f'{counts[0]}' if counts[0] == counts[-1] else f'{counts[0]}-{counts[-1]}'
    if len(by_checkpoint) > 1:
        seeds = [seed for seed, _ in by_checkpoint.values()]
        source = kind if None not in seeds and len(set(seeds)) == len(seeds) else 'pretraining run'
        values = [float(np.mean(v)) for _, v in by_checkpoint.values()]
        varied = f'{source} (n={len(values)})' + (f' x {inner} (n={inner_n})' if counts[-1] > 1 else '')
    else:
        source = inner
        values = list(next(iter(by_checkpoint.values()))[1])
        varied = (f'{inner} (n={len(values)}), one pretraining run' if len(values) > 1
                  else 'one run: nothing varied')
    machines = sorted({r.machine for r, _, _ in runs if r.machine})
    if len(machines) > 1:
        varied += f'; {len(machines)} machines'
    return dict(values=values, source=source, varied=varied, n=len(values), machines=machines)


def spread_verdict(source_a: str, n_a: int, source_b: str, n_b: int, separated: bool | None) -> str:
    """Words for a comparison of two cells, naming what varied in each.
    Only a spread over pretraining seeds tells whether a difference survives
    retraining; a spread over downstream seeds of one pretraining run does not."""
    if separated is None:
        return 'one run on a side: no interval'
    word = 'exceeds' if separated else 'within'
    outer = [s in OUTER_SOURCES for s in (source_a, source_b)]
    if source_a == source_b and all(outer):
        return f'{word} the {source_a.replace(" ", "-")} spread (n={n_a} and {n_b})'
    if source_a == source_b:
        return (f'{word} the {source_a.replace(" ", "-")} spread of one pretraining run each '
                f'(n={n_a} and {n_b}): pretraining variance not measured')
    if all(outer):
        return f'{word} the spread over {source_a}s (n={n_a}) and {source_b}s (n={n_b})'
    return (f'{word} the spread over {source_a}s (n={n_a}) and {source_b}s (n={n_b}): '
            f'pretraining variance not measured for the side with one pretraining run')


def _published_verdict(summary: dict, pub: float, cell_spread: dict) -> str:
    if cell_spread['n'] < 2:
        return 'one value: no interval'
    inside = summary['ci_low'] <= pub <= summary['ci_high']
    text = f"published value {'inside' if inside else 'outside'} the 95% CI over {cell_spread['source']}s " \
           f"(n={cell_spread['n']})"
    if cell_spread['source'] not in OUTER_SOURCES:
        text += ' of one pretraining run: pretraining variance not measured'
    return text


def _cell_row(table, label, benchmark, metric, runs, published, issues) -> dict:
    pub, pub_source, pub_protocol = _published(published, table, label, benchmark, metric)
    row = {'row': label, 'benchmark': benchmark, 'metric': metric, 'reproduced': 'not run',
           'published': pub if pub is not None else 'not published', 'difference': '', 'vs published': '',
           '95% CI': '', 'n': '', 'varied': '', 'protocol': '', 'protocol check': '', 'pretraining': '',
           'epochs': '', 'snapshot': '', 'world size': '', 'global batch': '', 'runs': 0, 'machine': '', 'pretraining cost': '',
           'downstream cost': '', 'checkpoint': '',
           'published source': pub_source, 'values': '', 'spread source': ''}
    if not runs:
        return row
    keys = [(r.checkpoint, r.seed, p.get('seed')) for r, p, _ in runs]
    if len(set(keys)) < len(keys):
        paths = ', '.join(r.path for r, _, _ in runs)
        issues.append((table, f'{label} / {benchmark} {metric}: {len(runs)} runs claim this cell with '
                              f'the same checkpoint and seed ({paths}); none picked'))
        row['reproduced'] = 'conflict'
        return row
    cell_spread = spread(runs)
    values = np.array(cell_spread['values'])
    first, pretraining = runs[0][0], runs[0][1]
    mean = float(values.mean())
    row['reproduced'] = f'{mean:.2f}' if len(values) == 1 else f'{mean:.2f} ± {values.std(ddof=1):.2f}'
    summary = summarise(values)
    if len(values) > 1:
        row['95% CI'] = f"[{summary['ci_low']:.2f}, {summary['ci_high']:.2f}]"
    row['values'] = ';'.join(f'{v:.4f}' for v in values)
    row.update({'n': cell_spread['n'], 'varied': cell_spread['varied'], 'spread source': cell_spread['source'],
                'machine': '; '.join(cell_spread['machines']) or 'not recorded',
                'pretraining cost': cost_text(list({r.checkpoint: p.get('cost') for r, p, _ in runs}.values())),
                'downstream cost': cost_text([r.cost for r, _, _ in runs])})
    protocols = sorted({r.protocol for r, _, _ in runs})
    check = protocol_check([r for r, _, _ in runs])
    row.update({'protocol': '; '.join(protocols), 'protocol check': check, 'pretraining': pretraining['data'],
                'epochs': pretraining.get('epochs') or '', 'snapshot': pretraining.get('snapshot', ''),
                'world size': first.world_size or '',
                'global batch': first.global_batch or '', 'runs': len(runs),
                'checkpoint': '; '.join(sorted({r.checkpoint for r, _, _ in runs}))})
    if pub is not None:
        if check == 'not checked' or check.startswith('deviates'):
            row['difference'] = 'n/a (protocol ' + check.split(':')[0] + ')'
        elif _comparable(protocols[0], pub_protocol):
            row['difference'] = f'{mean - pub:+.2f}'
            row['vs published'] = _published_verdict(summary, pub, cell_spread)
        else:
            row['difference'] = 'n/a (protocols differ)'
    return row


def _short(column: str, value) -> str:
    """Markdown cells name the deviating fields only; the CSV has the values."""
    text = str(value)
    if column == 'protocol check' and text.startswith('deviates: '):
        fields = [d.split(': ')[0] for d in text[len('deviates: '):].split('; ')]
        return 'deviates: ' + ', '.join(fields)
    return text


def row_differences(frame: pd.DataFrame) -> list[str]:
    """For each benchmark and metric, every pair of rows with two values or
    more: the difference of means, its Welch 95% confidence interval, and
    whether it exceeds the spread (the interval excludes 0), naming over
    what that spread was measured (:func:`spread_verdict`)."""
    lines = []
    for (benchmark, metric), cells in frame.groupby(['benchmark', 'metric'], sort=False):
        runs = [(row, [float(v) for v in str(row['values']).split(';') if v]) for _, row in cells.iterrows()]
        runs = [(row, values) for row, values in runs if len(values) > 1]
        for i, (first, a) in enumerate(runs):
            for second, b in runs[i + 1:]:
                result = compare(a, b)
                verdict = spread_verdict(first['spread source'], len(a), second['spread source'], len(b),
                                         result['separated'])
                lines.append(f"{benchmark} {metric}: {first['row']} - {second['row']} = {result['difference']:+.2f}, "
                             f"95% CI [{result['ci_low']:+.2f}, {result['ci_high']:+.2f}]: {verdict}")
    return lines


# Column names of the paper-shaped tables.
BENCHMARK_NAMES = {'coco_1x': 'COCO 1x', 'coco_2x': 'COCO 2x', 'voc': 'VOC', 'cityscapes': 'Cityscapes',
                   'cub': 'CUB', 'knn': 'k-NN', 'voc_probe': 'VOC probe', 'coco_mocov2_1x': 'COCO (MoCo 1x)',
                   'imagenet_linear': 'linear', 'imagenet_semi_1pct': 'semi 1%', 'imagenet_semi_10pct': 'semi 10%'}
# What the marks of a reproduced cell mean.
_MARKS = {'deviates': '†', 'not checked': '‡'}


def method_order(label: str) -> tuple:
    """R2O's rows first, then BYOL's, then the random init, then the rest, each in name order (tables and
    figures)."""
    kind = next((i for i, start in enumerate(('R2O', 'BYOL', 'random init')) if label.startswith(start)), 3)
    return kind, label


def _paper_cell(row) -> str:
    """'mean [95% CI], n=N (published)' with a mark when the protocol is not
    the authors' exactly; the words of the long table otherwise."""
    reproduced = str(row['reproduced'])
    if reproduced in ('not run', 'conflict', 'failed'):
        return reproduced
    text = reproduced.split(' ')[0]
    if row['95% CI']:
        text += f" {row['95% CI']}"
    text += f", n={row['n']}"
    check = str(row['protocol check'])
    text += next((f' {mark}' for start, mark in _MARKS.items() if check.startswith(start)), '')
    if isinstance(row['published'], float):
        text += f" ({row['published']:g})"
    return text


def paper_table(table: str, frame: pd.DataFrame, published: pd.DataFrame | None) -> list[str]:
    """The paper's layout: rows = methods (the published ones of this table's
    pretraining data, then this code's), columns = the table's benchmarks."""
    columns = TABLES[table][1]
    header = ['method'] + [f'{BENCHMARK_NAMES.get(b, b)} {m}' for b, m in columns]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    data = _TABLE_DATA[table]
    if published is not None and data is not None:
        rows = published[(published.pretraining_data == data) &
                         published.apply(lambda r: (r.benchmark, r.metric) in columns, axis=1)]
        for (method, epochs), group in rows.groupby(['method', 'epochs'], sort=False):
            values = {(r.benchmark, r.metric): 'not published' if pd.isna(r.value) else f'{r.value:g}'
                      for r in group.itertuples()}
            lines.append('| ' + ' | '.join([f'{method} ({epochs} ep, published)'] +
                                           [values.get(c, '–') for c in columns]) + ' |')
    for label, cells in sorted(frame.groupby('row', sort=False), key=lambda group: method_order(group[0])):
        by_cell = {(r['benchmark'], r['metric']): _paper_cell(r) for _, r in cells.iterrows()}
        lines.append('| ' + ' | '.join([label] + [by_cell.get(c, 'not run') for c in columns]) + ' |')
    lines += ['', 'Each cell: reproduced mean [95% CI], n = the values it is over (what varied: see the detail); '
                  '(published) the same method\'s published value for the same pretraining data; '
                  "† the run's protocol deviates from the authors' (not comparable: no difference is computed); "
                  '‡ protocol not checked.']
    return lines


def _detail(frame: pd.DataFrame) -> list[str]:
    """The full record of every cell that ran (the CSV has it too)."""
    lines = []
    skip = ('row', 'benchmark', 'metric', 'values', 'spread source')
    for _, row in frame.iterrows():
        if row['reproduced'] == 'not run':
            continue
        fields = [f"{c}: {_short(c, row[c])}" for c in frame.columns if c not in skip and str(row[c]) != '']
        lines.append(f"- **{row['row']}, {BENCHMARK_NAMES.get(row['benchmark'], row['benchmark'])} {row['metric']}**: "
                     + '; '.join(fields))
    return lines


# Tables whose published cells could not be read from any source reachable here (the authors' README gives
# only R2O's Table 1 row; the abstract gives gains, not cells): one line under the heading says so.
UNPUBLISHED_CELLS = {
    'table2': "No published cell of this table is in results/published.csv: none could be read from a source "
              "reachable here. The paper's first version states gains over the previous best of +1.9 VOC mIoU "
              "and +2.4 Cityscapes mIoU.",
    'table3': "Only R2O's published cell (71.6) is in results/published.csv: the baselines' cells could not be "
              'read from a source reachable here.',
    'table4': 'No published cell of this table is in results/published.csv: none could be read from a source '
              'reachable here (the abstract states gains, not cells).',
}


def to_markdown(table: str, frame: pd.DataFrame, issues: list[str], published: pd.DataFrame | None = None) -> str:
    title = TABLES[table][0]
    lines = [f'## {title}', ''] + ([UNPUBLISHED_CELLS[table], ''] if table in UNPUBLISHED_CELLS else [])
    lines += paper_table(table, frame, published)
    differences = row_differences(frame)
    if differences:
        lines += ['', 'Differences between rows (Welch 95% confidence interval of the difference of means):', '']
        lines += [f'- {line}' for line in differences]
    relevant = [text for where, text in issues if where == table]
    if relevant:
        lines += ['', 'Issues found:', ''] + [f'- {issue}' for issue in relevant]
    detail = _detail(frame)
    if detail:
        lines += ['', '### Detail: every cell that ran', '',
                  'Protocol, deviations, what varied, machine, costs and checkpoint (the CSV also has the values).',
                  ''] + detail
    return '\n'.join(lines) + '\n'


def write_tables(work_dirs, out_dir: str, published_csv: str, latex: bool = False) -> dict:
    """Writes <table>.md and <table>.csv (and .tex) under ``out_dir`` for
    every table a run reached, with a value or an issue (``written``); the
    others (``untouched``) get no file."""
    published = pd.read_csv(published_csv)
    tables, issues = build_tables(work_dirs, published)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, 'issues.md'), 'w') as handle:
        handle.write('# Issues found while collecting\n\n' + (''.join(
            f'- {where or "no table"}: {text}\n' for where, text in issues) or 'None.\n'))
    written, untouched = [], []
    for name, frame in tables.items():
        files = [os.path.join(out_dir, f'{name}.{ext}') for ext in ('csv', 'md', 'tex')]
        if not holds_values(frame) and not any(where == name for where, _ in issues):
            # no run reached it: no file (one left by an earlier collection into this folder goes)
            untouched.append(name)
            for path in files:
                if os.path.isfile(path):
                    os.remove(path)
            continue
        written.append(name)
        frame.to_csv(files[0], index=False)
        with open(files[1], 'w') as handle:
            handle.write(to_markdown(name, frame, issues, published))
        if latex:
            frame.to_latex(files[2], index=False)
    return {'tables': tables, 'issues': issues, 'published': published, 'written': written,
            'untouched': untouched}


def holds_values(frame: pd.DataFrame) -> bool:
    """Whether a table has a cell some run reached (a value, a conflict or a failure)."""
    return bool((frame['reproduced'] != 'not run').any())


def history_groups(paths: list[str]) -> dict:
    """{row label: [paths]} of per-run histories (``mask_quality.json``,
    one per pretraining run), grouped as the tables' rows are: one recipe
    and data set per label, any seed (:func:`recipe_key`, :func:`row_labels`);
    a run without ``pretrain_info.json`` is a label of its own."""
    members: dict = {}
    pretraining: dict = {}
    for path in sorted(paths):
        info = pretraining_of(path)
        if info is None:
            method, group = f'no pretraining record: {os.path.dirname(path)}', ('no record', path)
            described = dict(config='', snapshot='', data='')
        else:
            method, group = method_label(info), recipe_key(info)
            described = dict(snapshot=f"{info.get('epochs')} epochs",
                             data=f"{info.get('dataset')} ({info.get('data_root')})", **_recipe_names(info))
        pretraining[(method, group)] = described
        members.setdefault((method, group), []).append(path)
    labels = row_labels(pretraining)
    return {labels[key]: files for key, files in sorted(members.items(), key=lambda item: labels[item[0]])}


def split_by_geometry(histories: list[list[dict]], k: str) -> bool:
    """Whether the masks at ``k`` cannot measure learning: K <= 2 in runs
    whose records (mask_quality.json) say some superpixels had zero
    descriptors (the empty slots and the superpixels that miss every sample
    point of the layer3 grid are all zero vectors; K-means puts them in one
    cluster and, at K=2, every real descriptor in the other, whatever the
    encoder). Records from before ``zero_descriptors`` was kept: False."""
    return int(k) <= 2 and any(r.get('zero_descriptors', 0) > 0 for h in histories for r in h)


def mask_quality_table(groups: dict) -> pd.DataFrame:
    """mBO of the predicted masks at the first and the last evaluation, per
    row and K (each fixed K measured at every evaluation, then the run's
    current K): mean [95% CI] over pretraining seeds, the paired change
    last - first with its 95% CI, and n. ``groups``: {row label:
    [mask_quality.json of each pretraining seed]} (:func:`history_groups`)."""
    rows = []
    for label, files in sorted(groups.items(), key=lambda item: method_order(item[0])):
        histories = [h for h in (_load_json(f) for f in files) if h]
        if not histories:
            continue
        fixed = sorted({k for h in histories for k in h[0]['mBO'] if all(k in r['mBO'] for r in h)}, key=int)
        for k in fixed + [None]:
            firsts = [h[0]['mBO'][k if k else str(h[0]['K'])] for h in histories]
            lasts = [h[-1]['mBO'][k if k else str(h[-1]['K'])] for h in histories]
            whole = split_by_geometry(histories, k or str(min(int(h[-1]['K']) for h in histories)))
            first, last, change = summarise(firsts), summarise(lasts), summarise([b - a for a, b in
                                                                               zip(firsts, lasts)])
            kind = 'initialisation seed' if label.startswith('random init') else 'pretraining seed'
            rows.append({'row': label,
                         'K': (k if k else f"current ({histories[0][0]['K']} -> {histories[0][-1]['K']})")
                         + (' (zeros vs the rest, any encoder: not a measure of learning)' if whole else ''),
                         'first evaluation': f"epoch {histories[0][0]['epoch']}: {_mean_and_interval(first)}",
                         'last evaluation': f"epoch {histories[0][-1]['epoch']}: {_mean_and_interval(last)}",
                         'last - first': _mean_and_interval(change, '+'), 'n': len(histories),
                         'varied': f'{kind} (n={len(histories)})'})
    return pd.DataFrame(rows)


def _mean_and_interval(stats: dict, sign: str = '') -> str:
    """'15.13 [13.87, 16.40]' from :func:`summarise`'s result (the mean alone for one value)."""
    text = f"{stats['mean']:{sign}.2f}"
    return text + (f" [{stats['ci_low']:{sign}.2f}, {stats['ci_high']:{sign}.2f}]" if stats['n'] > 1 else '')


def mask_quality_markdown(frame: pd.DataFrame) -> str:
    lines = ['## mBO of the predicted masks over pretraining', '',
             "The masks each encoder's features cluster into (R2O's own mask path; BYOL's and a random init's "
             'features clustered the same way), scored against the objects of a labelled set (mean best '
             'overlap, %). Each cell: mean [95% CI] over pretraining seeds; last - first is paired over the '
             'same seeds.', '', '| ' + ' | '.join(frame.columns) + ' |', '|' + '---|' * len(frame.columns)]
    lines += ['| ' + ' | '.join(str(v) for v in row) + ' |' for row in frame.itertuples(index=False)]
    return '\n'.join(lines) + '\n'
