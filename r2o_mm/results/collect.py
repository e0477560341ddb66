"""Collate finished runs into the paper's tables, next to the published numbers.

Inputs, found recursively under the work dirs given:

* ``metrics.json`` / ``run_info.json`` / ``FAILED`` of transfer runs
  (``tools/transfer_run.py``), ``cub_metrics.json`` (``tools/eval_cub.py``),
  ``knn_metrics.json`` (``tools/eval_knn.py``);
* ``pretrain_info.json`` next to the pretraining checkpoint each result names,
  which says which table and row the result belongs to.

Every cell is (table, row, benchmark, metric). Several runs in one cell with
different seeds are averaged (mean and standard deviation); runs that claim
the same cell with the same seed are a conflict, listed under "issues found"
and not picked. Cells without a finished run say "not run" (or "failed").
"""
from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .statistics import compare, summarise

PINNED = {'mmdet': '3.3.0', 'mmseg': '1.2.2', 'mmengine': '0.10.7'}

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
}
# How each result file's metrics become (benchmark, metric) values in percent.
_METRIC_KEYS = {
    'coco': [('AP box', ('coco/bbox_mAP', 'bbox_mAP'), 100.0), ('AP mask', ('coco/segm_mAP', 'segm_mAP'), 100.0)],
    'seg': [('mIoU', ('mIoU',), 1.0)],
    'cub': [('mIoU', ('mIoU',), 1.0)],
    'knn': [('top-1', ('top1',), 1.0)],
    'probe': [('mIoU', ('mIoU',), 1.0)],
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
    """All finished downstream results, and the issues met on the way."""
    results, issues = [], []
    files = sorted({f for root in work_dirs for f in glob.glob(os.path.join(root, '**', '*.json'), recursive=True)})
    for path in files:
        name = os.path.basename(path)
        folder = os.path.dirname(path)
        if name == 'run_info.json' and not os.path.exists(os.path.join(folder, 'metrics.json')):
            state = 'failed' if os.path.exists(os.path.join(folder, 'FAILED')) else 'did not finish'
            info = _load_json(path)
            issues.append(f'{folder}: {info.get("task", "transfer")} run {state} (no metrics.json)')
            continue
        if name not in ('metrics.json', 'cub_metrics.json', 'knn_metrics.json', 'probe_metrics.json'):
            continue
        try:
            data = _load_json(path)
        except (OSError, json.JSONDecodeError) as error:
            issues.append(f'{path}: unreadable ({error})')
            continue
        if not data.get('finished'):
            issues.append(f'{path}: run did not finish')
            continue
        if name == 'probe_metrics.json':  # one result per seed
            for run in data.get('runs', []):
                results.append(Result(path, 'voc_probe', {'mIoU': float(run['mIoU'])}, data.get('protocol', ''),
                                      data.get('checkpoint', ''), run.get('seed')))
            continue
        if name == 'metrics.json':
            task = data.get('task', '')
            kind, benchmark = ('coco', task) if task.startswith('coco') else ('seg', task)
        else:
            kind = benchmark = data.get('benchmark', name.split('_')[0])
        values = _values(kind, data.get('metrics', {}))
        if values is None:
            issues.append(f'{path}: metrics {sorted(data.get("metrics", {}))} not recognised for {benchmark}')
            continue
        versions = {k: data[k] for k in PINNED if k in data}
        for package, version in versions.items():
            if version != PINNED[package]:
                issues.append(f'{path}: produced with {package} {version} (this project pins '
                              f'{PINNED[package]}); kept, compare with care')
        results.append(Result(path, benchmark, values, data.get('protocol', ''), data.get('checkpoint', ''),
                              data.get('seed'), data.get('world_size'), data.get('global_batch'), versions,
                              data.get('protocol_deviations')))
    for marker in sorted({f for root in work_dirs for f in glob.glob(os.path.join(root, '**', 'FAILED'),
                                                                     recursive=True)}):
        folder = os.path.dirname(marker)
        if not os.path.exists(os.path.join(folder, 'run_info.json')):
            issues.append(f'{folder}: transfer failed before it started')
    return results, issues


def pretraining_of(checkpoint: str) -> dict | None:
    info_path = os.path.join(os.path.dirname(checkpoint), 'pretrain_info.json')
    return _load_json(info_path) if os.path.isfile(info_path) else None


def place(result: Result) -> tuple[list[tuple[str, str]], dict]:
    """[(table, row label)] for the result, and a description of its pretraining."""
    info = pretraining_of(result.checkpoint)
    if info is None:
        label = os.path.basename(result.checkpoint) or 'unknown checkpoint'
        pretraining = dict(data='unknown (no pretrain_info.json)', epochs=None, seed=None)
        return [(_table_for(result.benchmark, 'table1'), label)], pretraining
    config = os.path.splitext(info.get('config', ''))[0]
    method = info.get('method') or ('BYOL (this code)' if info.get('mask_source') == 'whole_image'
                                    else 'R2O (this code)')
    data = info.get('dataset', '')
    subset = info.get('subset_file') or ''
    pretraining = dict(data=f"{data}{': ' + os.path.basename(subset) if subset else ''} ({info.get('data_root')})",
                       epochs=info.get('epochs'), seed=info.get('seed'))
    if data == 'CocoUnlabeled':
        table = 'table2'
    elif 'imagenet100' in config or '100' in os.path.basename(subset):
        table, method = 'table4', config.replace('r2o_imagenet100_', 'ImageNet-100: ')
    else:
        table = 'table1'
    return [(_table_for(result.benchmark, table), method)], pretraining


def _table_for(benchmark: str, by_pretraining: str) -> str:
    if benchmark == 'cub':
        return 'table3'
    if benchmark == 'coco_mocov2_1x':
        return 'mocov2'
    if benchmark == 'knn':
        return 'table4'
    if benchmark == 'voc_probe':
        return 'probes'
    return by_pretraining


# The pretraining data of each table's published numbers.
_TABLE_DATA = {'table1': 'ImageNet-1k', 'table2': 'COCO', 'table3': 'ImageNet-1k', 'table4': 'ImageNet-100',
               'mocov2': 'ImageNet-1k', 'probes': 'ImageNet-1k'}


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
    return (float(row.value), f'{row.method}, {row.pretraining_data}, {row.epochs} ep: {row.source}',
            row.protocol)


def _comparable(protocol: str, published_protocol: str) -> bool:
    """Same protocol family (first word: DetCon, CUB-200-2011, ...) and not shrunk."""
    if not published_protocol or 'shrunk' in protocol:
        return False
    return protocol.split()[0] == published_protocol.split()[0]


def protocol_check(runs: list[Result]) -> str:
    """"authors' protocol (exact)", the deviations, or why it is unknown."""
    if any(r.deviations is None for r in runs):
        transfer = any(os.path.basename(r.path) == 'metrics.json' for r in runs)
        return 'not checked' if transfer else "this project's tool"
    found = sorted({d for r in runs for d in r.deviations})
    return "authors' protocol (exact)" if not found else 'deviates: ' + '; '.join(found)


def build_tables(work_dirs, published: pd.DataFrame) -> tuple[dict, list[str]]:
    """{table: DataFrame (long format)} and the issues found."""
    results, issues = read_results(work_dirs)
    cells: dict = {}
    for result in results:
        placements, pretraining = place(result)
        for table, label in placements:
            if result.benchmark not in {b for b, _ in TABLES[table][1]}:
                issues.append(f'{result.path}: {result.benchmark} is not a benchmark of {table}; ignored')
                continue
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
    return tables, sorted(set(issues))


def _cell_row(table, label, benchmark, metric, runs, published, issues) -> dict:
    pub, pub_source, pub_protocol = _published(published, table, label, benchmark, metric)
    row = {'row': label, 'benchmark': benchmark, 'metric': metric, 'reproduced': 'not run',
           'published': pub if pub is not None else 'not published', 'difference': '',
           '95% CI': '', 'protocol': '', 'protocol check': '', 'pretraining': '', 'epochs': '', 'world size': '',
           'global batch': '', 'runs': 0, 'checkpoint': '', 'published source': pub_source, 'values': ''}
    if not runs:
        return row
    keys = [(r.checkpoint, r.seed, p.get('seed')) for r, p, _ in runs]
    if len(set(keys)) < len(keys):
        paths = ', '.join(r.path for r, _, _ in runs)
        issues.append(f'{table} / {label} / {benchmark} {metric}: {len(runs)} runs claim this cell with '
                      f'the same checkpoint and seed ({paths}); none picked')
        row['reproduced'] = 'conflict'
        return row
    values = np.array([v for _, _, v in runs])
    first, pretraining = runs[0][0], runs[0][1]
    mean = float(values.mean())
    row['reproduced'] = f'{mean:.2f}' if len(values) == 1 else f'{mean:.2f} ± {values.std(ddof=1):.2f}'
    summary = summarise(values)
    if len(values) > 1:
        row['95% CI'] = f"[{summary['ci_low']:.2f}, {summary['ci_high']:.2f}]"
    row['values'] = ';'.join(f'{v:.4f}' for v in values)
    protocols = sorted({r.protocol for r, _, _ in runs})
    check = protocol_check([r for r, _, _ in runs])
    row.update({'protocol': '; '.join(protocols), 'protocol check': check, 'pretraining': pretraining['data'],
                'epochs': pretraining.get('epochs') or '', 'world size': first.world_size or '',
                'global batch': first.global_batch or '', 'runs': len(values),
                'checkpoint': '; '.join(sorted({r.checkpoint for r, _, _ in runs}))})
    if pub is not None:
        if check == 'not checked' or check.startswith('deviates'):
            row['difference'] = 'n/a (protocol ' + check.split(':')[0] + ')'
        elif _comparable(protocols[0], pub_protocol):
            row['difference'] = f'{mean - pub:+.2f}'
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
    """For each benchmark and metric, every pair of rows with two runs or
    more: the difference of means, its Welch 95% confidence interval, and
    whether it exceeds the seed-to-seed spread (the interval excludes 0)."""
    lines = []
    for (benchmark, metric), cells in frame.groupby(['benchmark', 'metric'], sort=False):
        runs = [(row, [float(v) for v in str(row['values']).split(';') if v]) for _, row in cells.iterrows()]
        runs = [(row, values) for row, values in runs if len(values) > 1]
        for i, (first, a) in enumerate(runs):
            for second, b in runs[i + 1:]:
                result = compare(a, b)
                verdict = 'exceeds the seed spread' if result['separated'] else 'within the seed spread'
                lines.append(f"{benchmark} {metric}: {first['row']} - {second['row']} = {result['difference']:+.2f}, "
                             f"95% CI [{result['ci_low']:+.2f}, {result['ci_high']:+.2f}]: {verdict}")
    return lines


def to_markdown(table: str, frame: pd.DataFrame, issues: list[str]) -> str:
    title = TABLES[table][0]
    lines = [f'## {title}', '']
    columns = [c for c in frame.columns if c != 'values']
    lines.append('| ' + ' | '.join(columns) + ' |')
    lines.append('|' + '---|' * len(columns))
    for _, row in frame.iterrows():
        lines.append('| ' + ' | '.join(_short(c, row[c]) for c in columns) + ' |')
    differences = row_differences(frame)
    if differences:
        lines += ['', 'Differences between rows (Welch 95% confidence interval of the difference of means):', '']
        lines += [f'- {line}' for line in differences]
    relevant = [i for i in issues if table in i or not any(t in i for t in TABLES)]
    if relevant:
        lines += ['', 'Issues found:', ''] + [f'- {issue}' for issue in relevant]
    return '\n'.join(lines) + '\n'


def write_tables(work_dirs, out_dir: str, published_csv: str, latex: bool = False) -> dict:
    """Writes <table>.md and <table>.csv (and .tex) under ``out_dir``."""
    published = pd.read_csv(published_csv)
    tables, issues = build_tables(work_dirs, published)
    os.makedirs(out_dir, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(os.path.join(out_dir, f'{name}.csv'), index=False)
        with open(os.path.join(out_dir, f'{name}.md'), 'w') as handle:
            handle.write(to_markdown(name, frame, issues))
        if latex:
            frame.to_latex(os.path.join(out_dir, f'{name}.tex'), index=False)
    return {'tables': tables, 'issues': issues}
