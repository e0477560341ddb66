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
from .collect import BENCHMARK_NAMES, EXACT, split_by_geometry  # noqa: E402
from .collect import method_order as _method_order  # noqa: E402


def cell_name(benchmark: str, metric: str) -> str:
    """A cell in the user's words: 'VOC probe mIoU', 'COCO 1x AP box'."""
    return f'{BENCHMARK_NAMES.get(benchmark, benchmark)} {metric}'


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
            cells.append(dict(cell=f"{table}: {cell_name(row['benchmark'], row['metric'])}", row=row['row'],
                              value=value,
                              ci=_interval(row),
                              published=published, exact=row.get('protocol check') == EXACT))
    return cells


def reproduced_vs_published(tables: dict, path: str) -> dict:
    """Reproduced cells with their 95% CI. A published bar stands beside a
    cell only when its run followed the authors' protocol exactly; the other
    cells are drawn in a panel of their own, "protocol deviates: not
    comparable", with no published number. Returns what was drawn, {panel
    title: {series: {cell: value}}} ({} and no file when no cell has a
    published number it can be compared with: the tables and probes.png
    show the rest)."""
    cells = _reproduced_cells(tables)
    drawn = {}
    if not any(c['exact'] and c['published'] is not None for c in cells):
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


# What each logged scalar is, in the user's words.
_SCALARS = {'loss': 'loss', 'K': 'K (clusters of the masks)', 'tau': 'tau (target EMA share)', 'lr': 'learning rate'}


def training_curves(work_dir: str, path: str) -> bool:
    """loss, K, tau and lr against iterations from a pretraining run's
    scalars.json; K only where it drives the masks (not BYOL's one
    whole-image mask, as ``pretrain_info.json`` records)."""
    info_path = os.path.join(work_dir, 'pretrain_info.json')
    info = json.load(open(info_path)) if os.path.isfile(info_path) else {}
    drives_masks = info.get('mask_source') != 'whole_image'
    records = []
    for scalars in sorted(glob.glob(os.path.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(scalars) as handle:
            records += [json.loads(line) for line in handle if line.strip()]
    records = [r for r in records if 'loss' in r and 'iter' in r]
    if not records:
        return False
    frame = pd.DataFrame(records).drop_duplicates('iter', keep='last').sort_values('iter')
    keys = [k for k in _SCALARS if k in frame and (k != 'K' or drives_masks)]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8), squeeze=False)
    for axis, key in zip(axes[0], keys):
        axis.plot(frame['iter'], frame[key])
        axis.set_title(_SCALARS[key], fontsize=9)
        axis.set_xlabel('iteration')
    fig.suptitle(os.path.basename(os.path.normpath(work_dir)), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def run_schedules(infos: list[dict]) -> dict:
    """{label: (kind, start, end, epochs, total_epochs, points)} of the K schedules the pretraining
    runs of ``infos`` (their pretrain_info.json) followed, one per distinct
    schedule, labelled with the configs that used it; BYOL runs (one
    whole-image mask) and records without a schedule are left out."""
    schedules: dict = {}
    for info in infos:
        hook = info.get('k_schedule')
        if not hook or info.get('mask_source') == 'whole_image' or not info.get('epochs'):
            continue
        points = tuple(tuple(p) for p in hook.get('points') or ())
        key = (hook.get('kind', 'cosine'), hook.get('start', 128), hook.get('end', 4), int(info['epochs']),
               hook.get('total_epochs') or int(info['epochs']), points)
        config = os.path.splitext(os.path.basename(info.get('config') or ''))[0] or 'a run'
        schedules.setdefault(key, set()).add(config)
    return {f"{', '.join(sorted(configs))}: {kind} {start} -> {end}, {epochs} epochs": key
            for key, configs in sorted(schedules.items(), key=lambda item: str(item[0]))
            for kind, start, end, epochs in [key[:4]]}


def k_schedule(infos: list[dict], path: str) -> dict:
    """The K schedule (region-to-object curriculum) of each pretraining run
    collected, K per epoch as ClusterScheduleHook sets it (epoch e trains at
    K(e + 1)). Returns {label: [K of epochs 1..T]} ({} and no file when no
    run collected drives K)."""
    drawn = {}
    schedules = run_schedules(infos)
    if not schedules:
        return drawn
    fig, axis = plt.subplots(figsize=(5.5, 3))
    for label, (kind, start, end, epochs_run, total, points) in schedules.items():
        epochs = list(range(1, epochs_run + 1))
        drawn[label] = [cluster_schedule(e, kind, start, end, total, points) for e in epochs]
        axis.step(epochs, drawn[label], where='post', label=label)
    axis.set_xlabel('pretraining epoch')
    axis.set_ylabel('K (clusters of the masks)')
    axis.set_title('Region-to-object curriculum of the runs collected', fontsize=10)
    axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


def mask_quality_curves(runs: dict, path: str) -> dict:
    """mBO of the predicted masks over pretraining, one panel per K measured
    at every epoch and one at the run's current K: per method ({label:
    [mask_quality.json of each pretraining seed]}) the mean over seeds (thick)
    with its min-max band and each seed thin, at every epoch the hook
    measured; the current K is drawn as steps under the last panel's curves.
    A K that cannot measure learning (:func:`split_by_geometry`) gets no panel, and the title says so. Returns {panel: {label: {epoch: mean}}} ({} and no file without data)."""
    histories = {label: [json.load(open(f)) for f in files if os.path.isfile(f)]
                 for label, files in sorted(runs.items(), key=lambda item: _method_order(item[0]))}
    histories = {label: [h for h in seeds if h] for label, seeds in histories.items()}
    histories = {label: seeds for label, seeds in histories.items() if seeds}
    drawn = {}
    if not histories:
        return drawn
    every = [h for seeds in histories.values() for h in seeds]
    fixed = sorted({k for h in every for k in h[0]['mBO'] if all(k in r['mBO'] for r in h)}, key=int, reverse=True)
    flat = [k for k in fixed if split_by_geometry(every, k)]
    panels = [(f'K = {k}', k) for k in fixed if k not in flat] + [('current K', None)]
    # At most two panels a row: the figure keeps a shape that reads at a page's width.
    columns = min(len(panels), 2)
    rows = -(-len(panels) // columns)
    fig, grid = plt.subplots(rows, columns, figsize=(3.6 * columns + 0.6, 2.9 * rows), sharey=True, squeeze=False)
    axes = list(grid.flat)[:len(panels)]
    for spare in list(grid.flat)[len(panels):]:
        spare.set_visible(False)
    for axis, (title, k) in zip(axes, panels):
        for label, seeds in histories.items():
            colour = _method_colour(label)
            per_seed = []
            for history in seeds:
                # The current K's point is left out where that K cannot measure learning (K=2).
                curve = {r['epoch']: r['mBO'].get(k if k is not None else str(r['K'])) for r in history
                         if k is not None or not split_by_geometry([[r]], str(r['K']))}
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
    for row in grid[:, 0]:
        row.set_ylabel('mBO of predicted masks (%)')
    k_axis = axes[-1].twinx()
    first = next(iter(histories.values()))[0]
    k_axis.step([r['epoch'] for r in first], [r['K'] for r in first], where='post', color='grey', alpha=0.6,
                label='current K')
    k_axis.set_ylabel('current K (grey steps)', fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles + [k_axis.lines[0]], labels + ['current K'], loc='upper center', bbox_to_anchor=(0.5, 0.0),
               ncol=3, fontsize=8, frameon=False)
    title = 'mBO of the predicted masks over pretraining (band: min-max over pretraining seeds)'
    if flat:
        title += (f"\nnot drawn: K = {', '.join(flat)}: the zero descriptors (empty slots, superpixels missing the "
                  'layer3 grid) fill one cluster and every real one the other, whatever the encoder')
    fig.suptitle(title, fontsize=9)
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
            rows.append((row['row'], cell_name(row['benchmark'], row['metric']), mean, low, high, len(values),
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
    axis.set_ylabel('VOC probe mIoU (%), mean and 95% CI' if {r[1] for r in rows} == {'VOC probe mIoU'}
                    else 'mIoU (%), mean and 95% CI')
    axis.set_title('Frozen probes', fontsize=9, loc='left')
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches='tight')
    plt.close(fig)
    return True


def stack_pictures(pictures: list[tuple[str, str]], path: str) -> bool:
    """The pictures ([(png, title)]) one under the other, each with its
    title (the paper's Fig. 3 at several epochs and methods). False and no
    file when none exists."""
    import matplotlib.image
    found = [(matplotlib.image.imread(p), title) for p, title in pictures if os.path.isfile(p)]
    if not found:
        return False
    width = max(image.shape[1] for image, _ in found)
    heights = [image.shape[0] for image, _ in found]
    fig, axes = plt.subplots(len(found), 1, figsize=(width / 80, sum(heights) / 80 + 0.35 * len(found)),
                             gridspec_kw=dict(height_ratios=heights), squeeze=False)
    for axis, (image, title) in zip(axes[:, 0], found):
        axis.imshow(image)
        axis.set_title(title, fontsize=10, loc='left')
        axis.axis('off')
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True
