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
from .collect import EXACT  # noqa: E402
from .collect import method_order as _method_order  # noqa: E402


def _method_colour(label: str) -> str:
    """The same colour for a method in every figure: R2O C0, BYOL C1, random init C2."""
    return f'C{_method_order(label)[0]}'


def _interval(row) -> tuple[float, float] | None:
    """A row's '95% CI' cell, '[low, high]', as numbers (None when empty)."""
    bounds = str(row.get('95% CI', '')).strip('[]').split(', ')
    return (float(bounds[0]), float(bounds[1])) if len(bounds) == 2 else None


def _reproduced_cells(tables: dict) -> list[dict]:
    """Every cell with a reproduced value: its mean, 95% CI, published value
    and whether its protocol is the authors' exactly (the only case in which
    the two numbers are compared)."""
    cells = []
    for table, frame in tables.items():
        for _, row in frame.iterrows():
            try:
                value = float(str(row['reproduced']).split(' ')[0])
            except ValueError:
                continue
            published = row['published'] if isinstance(row['published'], float) else None
            cells.append(dict(cell=f"{table}: {row['benchmark']} {row['metric']}", row=row['row'], value=value,
                              ci=_interval(row),
                              published=published, exact=row.get('protocol check') == EXACT))
    return cells


def reproduced_vs_published(tables: dict, path: str) -> dict:
    """Reproduced cells with their 95% CI. A published bar stands beside a
    cell only when its run followed the authors' protocol exactly; the other
    cells are drawn in a panel of their own, "protocol deviates: not
    comparable", with no published number. Returns what was drawn, {panel
    title: {series: {cell: value}}} ({} and no file when nothing ran)."""
    cells = _reproduced_cells(tables)
    drawn = {}
    if not cells:
        return drawn
    groups = [(title, [c for c in cells if c['exact'] == exact]) for title, exact in (
        ("authors' protocol (exact): reproduced vs published", True),
        ('not comparable with the published numbers: the protocol deviates, or none is published', False))]
    groups = [(title, group) for title, group in groups if group]
    fig, axes = plt.subplots(len(groups), 1, figsize=(max(6.0, 0.9 * max(len(g) for _, g in groups) + 3), 3.2 * len(groups)),
                             squeeze=False)
    rows = sorted(dict.fromkeys(c['row'] for c in cells), key=_method_order)
    for axis, (title, group) in zip(axes[:, 0], groups):
        names = list(dict.fromkeys(c['cell'] for c in group))
        series = rows + (['published'] if any(c['published'] is not None for c in group) and group[0]['exact'] else [])
        width = 0.8 / len(series)
        for index, label in enumerate(series):
            if label == 'published':
                values = {c['cell']: c['published'] for c in group if c['published'] is not None}
                errors = None
            else:
                mine = {c['cell']: c for c in group if c['row'] == label}
                values = {name: c['value'] for name, c in mine.items()}
                errors = [[c['value'] - c['ci'][0] if c['ci'] else 0 for c in mine.values()],
                          [c['ci'][1] - c['value'] if c['ci'] else 0 for c in mine.values()]]
            if not values:
                continue
            drawn.setdefault(title, {})[label] = values
            xs = [names.index(name) + (index - (len(series) - 1) / 2) * width for name in values]
            axis.bar(xs, list(values.values()), width, yerr=errors, capsize=3, label=label,
                     color='black' if label == 'published' else _method_colour(label),
                     alpha=0.55 if label == 'published' else 1.0)
        axis.set_xticks(range(len(names)), [name.replace(': ', '\n') for name in names], fontsize=8)
        axis.set_ylabel('% (95% CI)')
        axis.set_title(title, fontsize=9, loc='left')
        axis.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches='tight')
    plt.close(fig)
    return drawn


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


def mask_quality_curves(runs: dict, path: str) -> dict:
    """mBO of the predicted masks over pretraining, one panel per K measured
    at every epoch and one at the run's current K: per method ({label:
    [mask_quality.json of each pretraining seed]}) the mean over seeds (thick)
    with its min-max band and each seed thin, at every epoch the hook
    measured; the current K is drawn as steps under the last panel's curves.
    Returns {panel: {label: {epoch: mean}}} ({} and no file without data)."""
    histories = {label: [json.load(open(f)) for f in files if os.path.isfile(f)]
                 for label, files in sorted(runs.items(), key=lambda item: _method_order(item[0]))}
    histories = {label: [h for h in seeds if h] for label, seeds in histories.items()}
    histories = {label: seeds for label, seeds in histories.items() if seeds}
    drawn = {}
    if not histories:
        return drawn
    every = [h for seeds in histories.values() for h in seeds]
    fixed = sorted({k for h in every for k in h[0]['mBO'] if all(k in r['mBO'] for r in h)}, key=int, reverse=True)
    panels = [(f'K = {k}', k) for k in fixed] + [('current K', None)]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels) + 1.8, 3.0), sharey=True, squeeze=False)
    axes = axes[0]
    for axis, (title, k) in zip(axes, panels):
        for label, seeds in histories.items():
            colour = _method_colour(label)
            per_seed = []
            for history in seeds:
                curve = {r['epoch']: r['mBO'].get(k if k is not None else str(r['K'])) for r in history}
                curve = {e: v for e, v in curve.items() if v is not None}
                per_seed.append(curve)
                axis.plot(list(curve), list(curve.values()), '-', color=colour, lw=0.6, alpha=0.5)
            epochs = sorted(set.intersection(*(set(c) for c in per_seed)))
            stacked = [[c[e] for c in per_seed] for e in epochs]
            mean = [sum(v) / len(v) for v in stacked]
            drawn.setdefault(title, {})[label] = dict(zip(epochs, mean))
            axis.fill_between(epochs, [min(v) for v in stacked], [max(v) for v in stacked], color=colour,
                              alpha=0.15, lw=0)
            axis.plot(epochs, mean, '-o', color=colour, lw=2, ms=3,
                      label=f'{label} (mean of {len(seeds)} seed{"s" if len(seeds) > 1 else ""})')
        axis.set_title(title, fontsize=9)
        axis.set_xlabel('pretraining epoch')
        axis.grid(alpha=0.3)
    axes[0].set_ylabel('mBO of predicted masks (%)')
    k_axis = axes[-1].twinx()
    first = next(iter(histories.values()))[0]
    k_axis.step([r['epoch'] for r in first], [r['K'] for r in first], where='post', color='grey', alpha=0.6,
                label='current K')
    k_axis.set_ylabel('current K (grey steps)', fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles + [k_axis.lines[0]], labels + ['current K'], loc='center left', bbox_to_anchor=(1.0, 0.5),
               fontsize=8, frameon=False)
    fig.suptitle('mBO of the predicted masks over pretraining (band: min-max over pretraining seeds)', fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches='tight')
    plt.close(fig)
    return drawn


def probe_bars(frame: pd.DataFrame, path: str) -> bool:
    """Mean per row with its 95% confidence interval as error bars, R2O first."""
    rows = []
    for _, row in frame.iterrows():
        values = [float(v) for v in str(row.get('values', '')).split(';') if v]
        if values:
            low, high = _interval(row) or (None, None)
            mean = sum(values) / len(values)
            rows.append((row['row'], f"{row['benchmark']} {row['metric']}", mean, low, high, len(values),
                         row.get('varied', '')))
    if not rows:
        return False
    rows.sort(key=lambda r: (r[1], _method_order(r[0])))
    fig, axis = plt.subplots(figsize=(2.0 + 1.5 * len(rows), 3.6))
    for index, (label, _, mean, low, high, n, _) in enumerate(rows):
        error = [[mean - low], [high - mean]] if low is not None else None
        axis.bar(index, mean, color=_method_colour(label), yerr=error, capsize=6)
        axis.text(index + 0.05, 0.5, f'{mean:.1f}', ha='left', va='bottom', fontsize=8, color='white')
    # Under each bar: the row, the cell, and what its interval is over.
    axis.set_xticks(range(len(rows)), [f"{label}\n{cell}\n{str(varied).replace(' x ', ' x' + chr(10))}"
                                       for label, cell, _, _, _, _, varied in rows], fontsize=7)
    axis.set_ylabel('mIoU (%), mean and 95% CI')
    axis.set_title('Frozen probes', fontsize=9, loc='left')
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches='tight')
    plt.close(fig)
    return True
