"""Does pretraining learn? The demo's learning size, collated (docs/demo.md).

Inputs are the records the pretraining hooks already write, epoch by epoch:
``knn_monitor.json`` (:class:`~r2o_mm.engine.health.KnnMonitorHook`: k-NN
top-1 on shapes told apart by shape only) and ``mask_quality.json``
(:class:`~r2o_mm.engine.health.MaskQualityHook`: mBO at K=4, 8 and the
current K), plus each encoder's ``probe_metrics.json`` (the frozen dense
probe). Epoch 0 of every run is measured before its first step: the random
initialisation of that run's seed, which is the random-init baseline for
the k-NN and the mBO (the probe's baseline are the demo's random-init
encoders, one per initialisation seed).

:func:`run_record` reads one run, :func:`learning_record` puts the runs
together (``learning.json``), :func:`verdicts` asks the three questions and
:func:`learning_curves` draws them.
"""
from __future__ import annotations

import json
import math
import os

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from .statistics import compare, summarise  # noqa: E402

RANDOM = 'random init'
# The small config's settings for learning at a few hundred steps (docs/demo.md, "Why the small config did not
# learn"): deviations of the CPU scale, not of the paper's recipe.
LEARNING_OPTIONS = (
    # lr for a batch of 32 of lr_per_256 x 32 / 256 = 5, without the released x K/16 (x 0.5 to x 0.125 for K
    # from 8 to 2): LARS moves a weight by about lr x eta = 0.5% of its norm a step, the recipe's order (lr 4.8
    # at batch 4096), where the released coupling at this batch moved it by 0.002% and the weights hardly left
    # their initialisation.
    'custom_hooks.1.lr_per_256=40', 'custom_hooks.1.couple_to_clusters=False',
)
# The learning size's K schedule: cosine 8 -> 4, not the small config's 8 -> 2. At K=2 the masks are the zero
# descriptors of the superpixels layer3's grid misses against the rest, the same for any encoder
# (docs/demo.md): the last third of a run at K < 4 trains on masks that hold no object, and the paper's
# schedule ends at K=4.
LEARNING_K_OPTIONS = ('custom_hooks.0.end=4',)
# The mBO keys of an evaluation: the fixed Ks, then the run's current K.
FIXED_KS = ('4', '8')


def learning_paths(root: str) -> dict:
    """Where :func:`write_learning_data` puts each dataset under ``root``."""
    return {'pretrain': os.path.join(root, 'scenes'), 'knn': os.path.join(root, 'shapes', 'imagenet'),
            'voc': os.path.join(root, 'downstream', 'VOCdevkit', 'VOC2012'),
            'coco': os.path.join(root, 'downstream', 'coco')}


def write_learning_data(root: str, size: dict) -> dict:
    """The learning size's data under ``root``: ``size['scenes']`` generated
    scenes for pretraining (``size['scene_size']``, backgrounds' stripes
    scaled by ``size['stripes']``); the k-NN set in ImageNet's layout, six
    shape classes whose colours and textures every class shares
    (``size['knn_train']`` and ``size['knn_val']`` images a class); the VOC
    layout for the probe and the COCO layout for the mBO
    (``size['scene_val']`` validation scenes). Returns :func:`learning_paths`."""
    from ..data.synthetic_scenes import write_imagenet_folder, write_scene_images, write_synthetic_datasets
    paths = learning_paths(root)
    write_scene_images(paths['pretrain'], size['scenes'], size=tuple(size['scene_size']), seed=7,
                       stripes=size.get('stripes', 1.0))
    write_imagenet_folder(os.path.join(root, 'shapes'), size['knn_train'], size['knn_val'], size=(72, 88), seed=11,
                          subsets=())
    write_synthetic_datasets(os.path.join(root, 'downstream'), size['scene_val'] * 2, size['scene_val'],
                             size=(96, 128), seed=0, layouts=('voc', 'coco'))
    return paths


def knn_monitor_options(knn_root: str, train_per_class: int, val_per_class: int, interval: int) -> list[str]:
    """The ``--cfg-options`` that point KnnMonitorHook at the k-NN set of :func:`write_learning_data`."""
    hook = 'default_hooks.knn_monitor'
    return [f'{hook}.train_dir={knn_root}/train', f'{hook}.val_dir={knn_root}/val',
            f'{hook}.train_per_class={train_per_class}', f'{hook}.val_per_class={val_per_class}',
            f'{hook}.interval={interval}']


def _history(path: str) -> dict:
    return {r['epoch']: r for r in json.load(open(path))} if os.path.isfile(path) else {}


def probe_miou(probe_dir: str) -> dict | None:
    """{'mean': mIoU over probe seeds, 'runs': each probe seed's} of one
    encoder's probe_metrics.json, or None when it was not probed."""
    path = os.path.join(probe_dir, 'probe_metrics.json')
    if not os.path.isfile(path):
        return None
    metrics = json.load(open(path))
    return {'mean': metrics['summary']['mean'], 'runs': [run['mIoU'] for run in metrics['runs']]}


def run_record(work_dir: str, seed: int, steps_per_epoch: int, probe: dict | None = None) -> dict:
    """One pretraining run: its evaluations in epoch order, each with its
    optimiser step (epoch x steps per epoch), k-NN top-1 and the mBO at K=4,
    K=8 and the current K (None where that hook did not measure), and the
    final probe."""
    knn = _history(os.path.join(work_dir, 'knn_monitor.json'))
    quality = _history(os.path.join(work_dir, 'mask_quality.json'))
    evaluations = []
    for epoch in sorted(set(knn) | set(quality)):
        record = quality.get(epoch)
        mbo = {k: record['mBO'].get(k) for k in FIXED_KS} if record else {k: None for k in FIXED_KS}
        mbo['current'] = record['mBO'].get(str(record['K'])) if record else None
        evaluations.append({'epoch': epoch, 'step': epoch * steps_per_epoch,
                            'knn_top1': knn[epoch]['top1'] if epoch in knn else None,
                            'K': record['K'] if record else None, 'mBO': mbo})
    return {'seed': seed, 'evaluations': evaluations, 'probe_miou': probe['mean'] if probe else None,
            'probe_runs': probe['runs'] if probe else []}


def learning_record(runs: dict, random_probes: dict, context: dict) -> dict:
    """``learning.json``: ``runs`` {method: [run_record, one per pretraining
    seed]}, ``random_probes`` {initialisation seed: probe dict}. The random
    init's k-NN and mBO are the first method's epoch-0 evaluations (one per
    seed: that seed's initialisation), its probe the random-init encoders'."""
    first = next(iter(runs.values()))
    random_init = []
    for run in first:
        start = run['evaluations'][0] if run['evaluations'] and run['evaluations'][0]['epoch'] == 0 else None
        probe = random_probes.get(run['seed'])
        random_init.append({'seed': run['seed'], 'knn_top1': start['knn_top1'] if start else None,
                            'mBO': dict(start['mBO']) if start else {},
                            'probe_miou': probe['mean'] if probe else None,
                            'probe_runs': probe['runs'] if probe else []})
    record = dict(context, methods=runs, random_init=random_init)
    record['verdicts'] = verdicts(record)
    return record


def _last(run: dict, measure: str):
    """The value of ``measure`` ('knn_top1', 'probe_miou' or 'mBO K=4') at the run's last evaluation."""
    if measure == 'probe_miou':
        return run['probe_miou']
    values = [_value(e, measure) for e in run['evaluations']]
    values = [v for v in values if v is not None]
    return values[-1] if values else None


def _value(evaluation: dict, measure: str):
    if measure.startswith('mBO'):
        return evaluation['mBO'].get(measure.split('K=')[1])
    return evaluation.get(measure)


MEASURES = {'knn_top1': 'k-NN top-1', 'probe_miou': 'probe mIoU', 'mBO K=4': 'mBO K=4', 'mBO K=8': 'mBO K=8'}


def _verdict(question: str, measure: str, label: str, result: dict, n: tuple, varied: str) -> dict:
    separated = result['separated']
    return {'question': question, 'measure': MEASURES[measure], 'comparison': label,
            'difference': result['difference'], 'ci_low': result['ci_low'], 'ci_high': result['ci_high'],
            'n': list(n), 'varied': varied,
            'verdict': 'one value on a side: no interval' if separated is None else
            ('separated (the 95% CI excludes 0)' if separated else 'not separated (the 95% CI includes 0)')}


def verdicts(record: dict) -> list[dict]:
    """(a) each method - random init on k-NN top-1 and the probe (Welch, over
    pretraining seeds and initialisation seeds); (b) R2O's mBO at K=4, last
    minus first evaluation, paired over pretraining seeds (and BYOL's, which
    says whether the measure moves at all at this size); (c) R2O - BYOL on
    each measure (Welch, over pretraining seeds of each)."""
    methods, random_init = record['methods'], record['random_init']
    found = []
    for method, runs in methods.items():
        for measure in ('knn_top1', 'probe_miou'):
            mine = [v for v in (_last(run, measure) for run in runs) if v is not None]
            base = [v for v in (r[measure] for r in random_init) if v is not None]
            if mine and base:
                found.append(_verdict('a', measure, f'{method} - {RANDOM}', compare(mine, base), (len(mine), len(base)),
                                      f'pretraining seed (n={len(mine)}) vs initialisation seed (n={len(base)})'))
    for method, runs in methods.items():  # R2O's is the question; BYOL's says whether the measure can move
        pairs = []
        for run in runs:
            values = [_value(e, 'mBO K=4') for e in run['evaluations']]
            values = [v for v in values if v is not None]
            if len(values) > 1:
                pairs.append(values[-1] - values[0])
        if pairs:
            rise = summarise(pairs)
            result = {'difference': rise['mean'], 'ci_low': rise['ci_low'], 'ci_high': rise['ci_high'],
                      'separated': None if rise['n'] < 2 else not rise['ci_low'] <= 0 <= rise['ci_high']}
            found.append(_verdict('b', 'mBO K=4', f'{method}: last - first evaluation', result, (len(pairs),),
                                  f'paired over pretraining seeds (n={len(pairs)})'))
    if 'R2O' in methods and 'BYOL' in methods:
        for measure in ('knn_top1', 'probe_miou', 'mBO K=4', 'mBO K=8'):
            mine = [v for v in (_last(run, measure) for run in methods['R2O']) if v is not None]
            theirs = [v for v in (_last(run, measure) for run in methods['BYOL']) if v is not None]
            if mine and theirs:
                found.append(_verdict('c', measure, 'R2O - BYOL', compare(mine, theirs), (len(mine), len(theirs)),
                                      f'pretraining seed (n={len(mine)} and {len(theirs)})'))
    return found


def verdict_lines(found: list[dict]) -> list[str]:
    """Two lines per verdict: the difference with its 95% CI, then the verdict and what varied."""
    questions = {'a': '(a) pretrained - random init', 'b': '(b) the masks over pretraining',
                 'c': '(c) R2O - BYOL'}
    lines, shown = [], None

    def signed(value):  # a difference that rounds to 0 reads +0.00, not -0.00
        return f'{round(value, 2) + 0.0:+.2f}'

    for v in found:
        if v['question'] != shown:
            lines.append(questions[v['question']])
            shown = v['question']
        interval = '' if math.isnan(v['ci_low']) else f", 95% CI [{signed(v['ci_low'])}, {signed(v['ci_high'])}]"
        lines += [f"  {v['measure']}: {v['comparison']} = {signed(v['difference'])}{interval}",
                  f"      {v['verdict']}; {v['varied']}"]
    return lines


def _curves(runs: list[dict], measure: str) -> list[dict]:
    curves = []
    for run in runs:
        points = [(e['step'], _value(e, measure)) for e in run['evaluations']]
        curves.append({step: value for step, value in points if value is not None})
    return curves


COLOURS = {'R2O': 'tab:red', 'BYOL': 'tab:blue'}


def learning_curves(record: dict, path: str) -> dict:
    """k-NN top-1 and mBO (K=4, K=8) against pretraining steps: each seed
    thin, the mean over seeds thick (at the steps every seed measured), the
    random init's range over initialisation seeds as a grey band with its
    mean dashed. Returns {panel: {method: {step: mean}}}; no file and {}
    without any evaluation."""
    panels = [('knn_top1', 'k-NN top-1 (%)'), ('mBO K=4', 'mBO, K=4'), ('mBO K=8', 'mBO, K=8')]
    panels = [(m, t) for m, t in panels
              if any(c for runs in record['methods'].values() for c in _curves(runs, m))]
    drawn = {}
    if not panels:
        return drawn
    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels) + 0.4, 3.2), squeeze=False)
    for axis, (measure, title) in zip(axes[0], panels):
        last_step = max(s for runs in record['methods'].values() for c in _curves(runs, measure) for s in c)
        base = [v for v in (_value(r, measure) for r in record['random_init']) if v is not None]
        if base:
            axis.axhspan(min(base), max(base), color='0.85', label=f'{RANDOM} (n={len(base)})')
            axis.axhline(sum(base) / len(base), color='0.5', ls='--', lw=1)
        for method, runs in record['methods'].items():
            colour = COLOURS.get(method, 'tab:green')
            curves = [c for c in _curves(runs, measure) if c]
            for curve in curves:
                axis.plot(list(curve), list(curve.values()), '-', color=colour, lw=0.7, alpha=0.45)
            steps = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
            mean = {s: sum(c[s] for c in curves) / len(curves) for s in steps}
            axis.plot(steps, list(mean.values()), '-o', color=colour, lw=2.2, ms=3,
                      label=f'{method} (n={len(curves)} seeds)')
            drawn.setdefault(title, {})[method] = mean
        axis.set_xlim(0, last_step * 1.02 or 1)
        axis.set_title(title)
        axis.set_xlabel('pretraining step')
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc='best')
    fig.suptitle(record.get('title', 'learning curves'), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return drawn
