"""Figures of the results tools (matplotlib, files only)."""
from __future__ import annotations

import glob
import json
import os

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..engine.schedules import cluster_schedule  # noqa: E402


def reproduced_vs_published(tables: dict, path: str) -> bool:
    """Bars per (table, benchmark, metric): each reproduced row, and the published value."""
    rows = []
    for frame in tables.values():
        for _, row in frame.iterrows():
            try:
                value = float(str(row['reproduced']).split(' ')[0])
            except ValueError:
                continue
            published = row['published'] if isinstance(row['published'], float) else None
            rows.append((f"{row['benchmark']}\n{row['metric']}", row['row'], value, published))
    if not rows:
        return False
    cells = list(dict.fromkeys(r[0] for r in rows))
    labels = list(dict.fromkeys(r[1] for r in rows))
    width = 0.8 / (len(labels) + 1)
    fig, axis = plt.subplots(figsize=(max(6, 1.6 * len(cells)), 4))
    for index, label in enumerate(labels):
        xs = [cells.index(c) + index * width for c, l, _, _ in rows if l == label]
        axis.bar(xs, [v for _, l, v, _ in rows if l == label], width, label=label)
    # R2O's published value where there is one, else the other method's (BYOL).
    published = {}
    for cell, label, _, value in sorted(rows, key=lambda r: r[1].startswith('R2O')):
        if value is not None:
            published[cell] = value
    axis.bar([cells.index(c) + len(labels) * width for c in published], list(published.values()), width,
             label='published (R2O, else BYOL)', color='black', alpha=0.6)
    axis.set_xticks([i + 0.4 - width / 2 for i in range(len(cells))], cells, fontsize=8)
    axis.set_ylabel('%')
    axis.legend(fontsize=7)
    axis.set_title('Reproduced vs published')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def training_curves(work_dir: str, path: str) -> bool:
    """loss, K, tau and lr against iterations from a pretraining run's scalars.json."""
    records = []
    for scalars in sorted(glob.glob(os.path.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(scalars) as handle:
            records += [json.loads(line) for line in handle if line.strip()]
    records = [r for r in records if 'loss' in r and 'iter' in r]
    if not records:
        return False
    frame = pd.DataFrame(records).drop_duplicates('iter', keep='last').sort_values('iter')
    keys = [k for k in ('loss', 'K', 'tau', 'lr') if k in frame]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8))
    for axis, key in zip(axes, keys):
        axis.plot(frame['iter'], frame[key])
        axis.set_title(key)
        axis.set_xlabel('iteration')
    fig.suptitle(os.path.basename(os.path.normpath(work_dir)), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def k_schedule(path: str) -> None:
    """The released K schedule (cosine 128 -> 4 over 300 epochs) and the COCO 800-epoch one."""
    fig, axis = plt.subplots(figsize=(5, 3))
    for total, label in ((300, 'ImageNet, 300 epochs'), (800, 'COCO, 800 epochs')):
        epochs = list(range(1, total + 1))
        axis.plot(epochs, [cluster_schedule(e, 'cosine', 128, 4, total) for e in epochs], label=label)
    axis.set_xlabel('epoch')
    axis.set_ylabel('K (clusters)')
    axis.set_title('Region-to-object curriculum')
    axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def mask_quality_curves(runs: dict, path: str, reference_k: int | None = None) -> bool:
    """mBO over pretraining epochs for each run ({label: mask_quality.json}),
    at each K evaluated at every epoch (solid; ``reference_k`` keeps one) and
    at the run's current K (dashed), with the current K on a second axis."""
    histories = {label: json.load(open(file)) for label, file in runs.items() if os.path.isfile(file)}
    if not histories:
        return False
    fig, axis = plt.subplots(figsize=(6.5, 3.8))
    k_axis = axis.twinx()
    for index, (label, history) in enumerate(histories.items()):
        colour = f'C{index}'
        epochs = [h['epoch'] for h in history]
        fixed = [k for k in history[0]['mBO'] if all(k in h['mBO'] for h in history)
                 and (reference_k is None or k == str(reference_k))]
        for marker, k in zip('osd^v', sorted(fixed, key=int, reverse=True)):
            axis.plot(epochs, [h['mBO'][k] for h in history], '-' + marker, color=colour, ms=3,
                      label=f'{label}, K={k}')
        axis.plot(epochs, [h['mBO'][str(h['K'])] if str(h['K']) in h['mBO'] else None for h in history],
                  '--', color=colour, alpha=0.6, label=f'{label}, current K')
        k_axis.step(epochs, [h['K'] for h in history], where='post', color='grey', alpha=0.4)
    axis.set_xlabel('pretraining epoch')
    axis.set_ylabel('mBO of predicted masks (%)')
    k_axis.set_ylabel('current K (grey)')
    axis.legend(fontsize=7, loc='best')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def probe_bars(frame: pd.DataFrame, path: str) -> bool:
    """Mean per row with its 95% confidence interval as error bars."""
    rows = []
    for _, row in frame.iterrows():
        values = [float(v) for v in str(row.get('values', '')).split(';') if v]
        if values:
            interval = str(row.get('95% CI', '')).strip('[]').split(', ')
            low, high = (float(interval[0]), float(interval[1])) if len(interval) == 2 else (None, None)
            mean = sum(values) / len(values)
            rows.append((f"{row['row']}\n{row['benchmark']} {row['metric']}", mean, low, high, len(values)))
    if not rows:
        return False
    fig, axis = plt.subplots(figsize=(1.6 + 1.4 * len(rows), 3.5))
    for index, (label, mean, low, high, n) in enumerate(rows):
        error = [[mean - low], [high - mean]] if low is not None else None
        axis.bar(index, mean, color=f'C{index}', yerr=error, capsize=6)
        axis.text(index, mean / 2, f'{mean:.1f}\nn={n}', ha='center', fontsize=8, color='white')
    axis.set_xticks(range(len(rows)), [r[0] for r in rows], fontsize=7)
    axis.set_ylabel('mIoU (%), 95% CI')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
