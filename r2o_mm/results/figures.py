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
