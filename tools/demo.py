"""The whole pipeline on small data that needs no download (README's first command).

    python tools/demo.py [--out work_dirs/demo] [--size quick|full|learn|test|learn_test] [--pretrain-seeds N]
                         [--seeds N] [--jobs N]

Stages: write the data once (scikit-image's photographs and generated scenes
whose classes are told by shape, not colour; VOC/COCO-layout scene datasets
with exact masks); pretrain R2O (configs/r2o_tiny_cpu.py, shrunk) and BYOL
(the same code with one whole-image mask) with several pretraining seeds,
following the mBO of the masks clustered from each one's features
(MaskQualityHook); random-init encoders with as many initialisation seeds;
frozen dense linear probes of every encoder; fine-tune and evaluate the
seed-0 encoder of each method on the VOC-layout set through mmseg (and, in
the full size, the COCO-layout set through mmdet); collate tables and figures with tools/collect_results.py and print
a compact summary whose verdicts say over what they were measured.
Everything goes under --out; full logs in --out/logs.

--size learn asks whether pretraining learns at all (docs/demo.md, "The
learning size"): R2O and BYOL over three pretraining seeds each, the k-NN
top-1 on shapes told apart by shape only and the mBO at K=4, 8 and the
current K every few epochs, the frozen probe at the end, random inits as
the baseline; results/learning.json, results/learning_curves.png and the
verdicts (r2o_mm.results.learning). learn_test is its test size.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# Sizes: 'quick' is the demo (at most 10 minutes on a 2-core AMD EPYC, the slowest machine measured): three
# pretraining seeds per method, the mBO of the masks over pretraining and frozen probes, the questions it
# asks. Its time goes where the learning size (docs/demo.md) saw pretraining learn: the mBO over pretraining
# seeds (a third seed: Student's t for n=3 is 4.3, for n=2 12.7) and more steps, one probe seed per encoder.
# Fine-tuning one pretraining run per method answers nothing over pretraining seeds (and 40 steps of FCN give
# every encoder the same all-background mIoU), so it is left to 'full': three pretraining seeds, twice the
# pretraining on twice the images, VOC fine-tuning with two seeds and COCO's Mask R-CNN. 'test' is the test
# suite's (COCO's Mask R-CNN runs in tests/transfer).
SIZES = {
    'quick': dict(photos=16, scenes=64, scene_val=24, epochs=8, batch=16, quality_every=2, pretrain_seeds=3,
                  voc_iters=0, voc_seeds=0, coco_iters=0, coco_seeds=0, image=96, probe_seeds=1,
                  probe_epochs=20, quality_images=24),
    'full': dict(photos=32, scenes=128, scene_val=32, epochs=12, batch=16, quality_every=2, pretrain_seeds=3,
                 voc_iters=100, voc_seeds=2, coco_iters=10, coco_seeds=1, image=96, probe_seeds=2,
                 probe_epochs=20, quality_images=32),
    'test': dict(photos=8, scenes=8, scene_val=6, epochs=1, batch=4, quality_every=1, pretrain_seeds=2,
                 voc_iters=2, voc_seeds=1, coco_iters=0, coco_seeds=0, image=96, probe_seeds=2, probe_epochs=2,
                 quality_images=6, finetuned=('R2O',)),
    # Does pretraining learn? (docs/demo.md, "The learning size"): no fine-tuning; k-NN top-1 and mBO every few
    # epochs, the probe at the end, over three pretraining seeds per method and three random inits.
    'learn': dict(mode='learn', scenes=512, scene_size=(96, 120), knn_train=50, knn_val=30, scene_val=48, epochs=20,
                  batch=32, quality_every=4, pretrain_seeds=3, probe_seeds=1, probe_epochs=20, quality_images=48),
    'learn_test': dict(mode='learn', scenes=16, scene_size=(64, 80), knn_train=4, knn_val=3, scene_val=6, epochs=2,
                       batch=8, quality_every=1, pretrain_seeds=2, probe_seeds=1, probe_epochs=2, quality_images=6),
}
METHODS = ('R2O', 'BYOL', 'random init')
RANDOM = METHODS[2]
SHOWN = ('Epoch(train)', 'mIoU:', 'done:', 'coco/bbox_mAP:', 'load check', 'wrote', 'metrics:',
         'mask quality, epoch', 'linear probe mIoU')


def run_name(method: str, seed: int) -> str:
    return f"{method.replace(' ', '_').lower()}_seed{seed}"


class Stages:
    """Prints each stage as it starts, with elapsed time and an ETA from the
    planned weights of the stages done so far (stages may overlap when runs
    go in parallel)."""

    def __init__(self, plan):
        self.plan, self.done, self.start = plan, 0.0, time.time()
        self.total = sum(weight for _, weight in plan)
        self.started = 0

    def begin(self) -> int:
        index = self.started
        name, _ = self.plan[index]
        elapsed = time.time() - self.start
        eta = '' if not self.done else f', ETA {elapsed / self.done * (self.total - self.done) / 60:.1f} min'
        print(f'\n[{index + 1}/{len(self.plan)}] {name} (elapsed {elapsed / 60:.1f} min{eta})', flush=True)
        self.started += 1
        return index

    def end(self, index: int | None = None):
        self.done += self.plan[self.started - 1 if index is None else index][1]


WIDTH = 120  # the console width the demo writes for; longer lines are wrapped, never cut


def show_progress(line: str, run: str = ''):
    """Prints a tool's output line when it is one of the progress lines
    (SHOWN), prefixed with the run it comes from (``[r2o s0]``: runs go two
    at a time, so a stage's header is not enough to tell) and wrapped."""
    if any(key in line for key in SHOWN) and not line.startswith('done: checkpoints'):  # a run's own last line
        say(line, run)


def say(line: str, run: str = ''):
    """Prints ``line`` indented under its stage, prefixed with its run, wrapped at WIDTH."""
    import textwrap
    prefix = f'   [{run}] ' if run else '   '
    print('\n'.join(textwrap.wrap(line.strip(), WIDTH, initial_indent=prefix, subsequent_indent=' ' * len(prefix),
                                  break_on_hyphens=False, break_long_words=True)), flush=True)


def run_tag(method: str, seed: int) -> str:
    """A run's name in the console: 'r2o s0', 'random init s1'."""
    return f'{method.lower()} s{seed}'


def run_parallel(jobs, parallel: int, stages: 'Stages'):
    """Runs the tools of ``jobs`` ([(args, log_path, run tag)], one stage each)
    ``parallel`` at a time, each with its share of the cores as torch threads;
    each one's progress lines are printed from its log when it ends. Runs are
    independent processes (no distributed training here), so their results
    do not depend on the order in which they finish."""
    threads = str(max(1, (os.cpu_count() or 1) // parallel))
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    pending, running = list(jobs), []
    while pending or running:
        while pending and len(running) < parallel:
            args, log_path, tag = pending.pop(0)
            os.makedirs(os.path.dirname(log_path), exist_ok=True)
            log = open(log_path, 'w')
            process = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                       env=env)
            running.append((process, log, log_path, args, stages.begin(), tag))
        time.sleep(0.2)
        for job in [job for job in running if job[0].poll() is not None]:
            process, log, log_path, args, index, tag = job
            running.remove(job)
            log.close()
            for line in open(log_path):
                show_progress(line, tag)
            if process.returncode:
                for other in running:
                    other[0].terminate()
                sys.exit(f'demo stage failed: {" ".join(args[:2])}; full log: {log_path}')
            stages.end(index)


def run_in_process(tool: str, args, log_path, tag: str = ''):
    """Runs a tool's main(argv) in this process (no interpreter start-up and
    imports per call), with its output in the log as :func:`run` keeps it."""
    import contextlib
    import importlib.util
    import io
    spec = importlib.util.spec_from_file_location(os.path.basename(tool)[:-3], os.path.join(ROOT, tool))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    output = io.StringIO()
    failure = None
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try:
            module.main(list(args))
        except SystemExit as stop:
            failure = stop.code if stop.code not in (None, 0) else None
    with open(log_path, 'w') as log:
        log.write(output.getvalue() + (f'{failure}\n' if failure else ''))
    for line in output.getvalue().splitlines():
        show_progress(line, tag)
    if failure:
        sys.exit(f'demo stage failed: {tool}; full log: {log_path}')


PRETRAIN_OPTIONS = {
    'R2O': [],
    'BYOL': ['model.mask_source=whole_image', 'custom_hooks.1.couple_to_clusters=False'],
}


def pretrain_args(method: str, seed: int, size: dict, work: str, images: str, slic_cache: str, quality: str,
                  extra=()) -> list[str]:
    """tools/train.py's arguments for one pretraining run of the demo."""
    from r2o_mm.results.learning import LEARNING_OPTIONS
    coco = os.path.dirname(os.path.dirname(quality))
    return ['tools/train.py', 'configs/r2o_tiny_cpu.py', '--work-dir', work, '--overwrite', '--cfg-options',
            # --overwrite: a second demo into the same --out starts each run over.
            f'train_dataloader.dataset.data_root={images}', f'train_cfg.max_epochs={size["epochs"]}',
            f'train_dataloader.batch_size={size["batch"]}', f'default_hooks.checkpoint.interval={size["epochs"]}',
            f'randomness.seed={seed}', f'model.kmeans_seed={seed}',
            'default_hooks.logger.interval=20', 'custom_hooks.3.interval=100000',
            # The small config's lr for learning at a few hundred steps (r2o_mm.results.learning): the recipe's
            # 0.3 per 256 x K/16 barely moves the weights at this batch.
            *LEARNING_OPTIONS,
            # Masks from a 128 px raw view (views stay 64 px): at 64 px layer3 is a 4 x 4 grid, and most
            # of the 100 superpixels then miss its bilinear sample points (zero descriptors).
            'train_dataloader.dataset.pipeline.2.size=128', 'default_hooks.mask_quality.size=128',
            f'train_dataloader.dataset.pipeline.2.cache_dir={slic_cache}',
            f'default_hooks.mask_quality.ann_file={quality}',
            f'default_hooks.mask_quality.image_dir={os.path.join(coco, "val2017")}',
            f'default_hooks.mask_quality.interval={size["quality_every"]}',
            # K=2 is not measured: the zero vectors of empty superpixel slots take one of the two
            # clusters, so every image is one mask and its mBO is the whole image's, for any encoder.
            'default_hooks.mask_quality.reference_ks=[8,4]',
            f'default_hooks.mask_quality.max_images={size["quality_images"]}',
            *PRETRAIN_OPTIONS[method], *extra]


def build_slic_cache(out: str, images: str) -> str:
    """The raw views' superpixels of ``images`` once for all pretraining runs
    (128 px: the size the runs use), in this process as the exports, probes
    and collation (an interpreter start fewer each); returns the cache folder."""
    slic_cache = os.path.join(out, 'data', 'slic_cache_128')
    run_in_process('tools/build_slic_cache.py', ['configs/r2o_tiny_cpu.py', '--out', slic_cache, '--workers', '1',
                   '--cfg-options', f'train_dataloader.dataset.data_root={images}',
                   'train_dataloader.dataset.pipeline.2.size=128'], os.path.join(out, 'logs', 'slic_cache.log'))
    return slic_cache


def write_random_inits(out: str, seeds) -> dict:
    """A random-init ResNet-18 per initialisation seed, saved as a
    checkpoint with its pretrain_info.json: {('random init', seed): path}."""
    import torch
    from r2o_mm.models.networks import ResNetEncoder
    checkpoints = {}
    for seed in seeds:
        random_dir = os.path.join(out, 'pretrain', run_name(RANDOM, seed))
        os.makedirs(random_dir, exist_ok=True)
        torch.manual_seed(seed)
        checkpoints[(RANDOM, seed)] = os.path.join(random_dir, 'random_init.pth')
        torch.save({'state_dict': {f'online_encoder.{k}': v for k, v in ResNetEncoder(18).state_dict().items()}},
                   checkpoints[(RANDOM, seed)])
        with open(os.path.join(random_dir, 'pretrain_info.json'), 'w') as handle:
            json.dump({'method': RANDOM, 'config': 'none', 'dataset': 'none', 'epochs': 0, 'seed': seed}, handle)
    return checkpoints


def probe_encoders(checkpoints: dict, voc: str, size: dict, out: str):
    """The frozen dense probe of every encoder of ``checkpoints`` ({(method,
    seed): path}), each into <out>/probes/<run name>/."""
    for (method, seed), checkpoint in checkpoints.items():
        name = run_name(method, seed)
        run_in_process('tools/eval_linear_probe.py',
                       [checkpoint, '--data', voc, '--seeds', str(size['probe_seeds']),
                        '--epochs', str(size['probe_epochs']), '--out', os.path.join(out, 'probes', name)],
                       os.path.join(out, 'logs', f'probe_{name}.log'), f'probe {run_tag(method, seed)}')


def write_data(out: str, size: dict) -> dict:
    """Pretraining images and downstream datasets, written once per size
    (a marker file makes a re-run reuse them)."""
    from r2o_mm.data.sample_images import write_photo_folder
    from r2o_mm.data.synthetic_scenes import write_scene_images, write_synthetic_datasets
    data = os.path.join(out, 'data')
    paths = {'pretrain': os.path.join(data, 'pretrain'), 'voc': os.path.join(data, 'downstream', 'VOCdevkit', 'VOC2012'),
             'coco': os.path.join(data, 'downstream', 'coco')}
    marker = os.path.join(data, 'complete.json')
    if os.path.isfile(marker) and json.load(open(marker)) == size:
        say(f'reusing the data under {data}')
        return paths
    write_photo_folder(os.path.join(paths['pretrain'], 'photos'), size['photos'], max_side=96)
    write_scene_images(os.path.join(paths['pretrain'], 'scenes'), size['scenes'], size=(64, 80), seed=100)
    write_synthetic_datasets(os.path.join(data, 'downstream'), size['scene_val'] * 2, size['scene_val'],
                             size=(96, 128), seed=0, layouts=('voc', 'coco'))
    with open(marker, 'w') as handle:
        json.dump(size, handle)
    say(f"{size['photos']} photographs + {size['scenes']} scenes for pretraining under {paths['pretrain']}; "
        f'VOC and COCO layouts under {data}/downstream')
    return paths


def _cells(results: str) -> dict:
    """{(row, benchmark, metric): the cell's row} of the demo's table: its
    pretraining data is none of the paper's, so 'other'."""
    import pandas as pd
    frames = [pd.read_csv(os.path.join(results, 'other.csv'), dtype=str, keep_default_na=False)]
    cells = pd.concat(frames)
    cells = cells[cells['values'] != '']
    return {(r['row'], r['benchmark'], r['metric']): r for _, r in cells.iterrows()}


def summary_lines(results: str, histories: dict, reference_k: int = 4) -> list[str]:
    """The printed summary (at most 120 columns; paths stay in the CSVs):
    each measure with what varied, then the verdicts, each naming the spread
    it was measured against. ``histories``: {method: [mask_quality.json
    history of each pretraining seed]}."""
    from r2o_mm.results.collect import spread_verdict
    from r2o_mm.results.statistics import compare, summarise
    lines = [f'{"method":<12} {"measure":<26} {"mean ± std":>14} {"95% CI":>17}  varied', '-' * 118]
    verdicts = []
    key = str(reference_k)
    for method, runs in histories.items():
        starts = [run[0]['mBO'][key] for run in runs]
        ends = [run[-1]['mBO'][key] for run in runs]
        last = runs[0][-1]['epoch']
        moved_from_to = f"{summarise(starts)['mean']:.1f} -> {summarise(ends)['mean']:.1f}"
        measure = f'mBO, K={key}, epoch 0 -> {last}'
        lines.append(f"{method:<12} {measure:<26} {moved_from_to:>14} {'':>17}  pretraining seed (n={len(runs)})")
        rise = summarise([e - s for s, e in zip(starts, ends)])
        if rise['n'] > 1:
            moved = 'rises' if rise['ci_low'] > 0 else 'falls' if rise['ci_high'] < 0 else 'no change shown'
            verdicts += [f"{method} mBO, K={key}, epoch {last} - epoch 0 = {rise['mean']:+.2f}, "
                         f"95% CI [{rise['ci_low']:+.2f}, {rise['ci_high']:+.2f}]",
                         f'    paired over pretraining seeds (n={rise["n"]}): {moved}']
    cells = _cells(results)
    names = {'voc_probe': 'linear probe (frozen) mIoU', 'voc': 'VOC fine-tuned mIoU', 'coco_1x': 'COCO fine-tuned'}
    order = {name: i for i, name in enumerate(['R2O (this code)', 'BYOL (this code)', 'random init'])}
    keys = sorted(cells, key=lambda k: (list(names).index(k[1]) if k[1] in names else 9, k[2], order.get(k[0], 9)))
    for row, benchmark, metric in keys:
        cell = cells[(row, benchmark, metric)]
        measure = names.get(benchmark, benchmark) + (f' {metric}' if benchmark == 'coco_1x' else '')
        method = row.replace(' (this code)', '')
        lines.append(f"{method:<12} {measure:<26} {cell['reproduced']:>14} {cell['95% CI']:>17}  {cell['varied']}")
        pairs = [('random init', row)] if row != 'random init' else []
        if row == 'R2O (this code)':
            pairs.append(('BYOL (this code)', row))
        for other, _ in pairs:
            if (other, benchmark, metric) not in cells:
                continue
            mine = [float(v) for v in cell['values'].split(';')]
            theirs_cell = cells[(other, benchmark, metric)]
            theirs = [float(v) for v in theirs_cell['values'].split(';')]
            result = compare(mine, theirs)
            interval = '' if result['separated'] is None else \
                f", 95% CI [{result['ci_low']:+.2f}, {result['ci_high']:+.2f}]"
            verdicts += [f"{measure}: {method} - {other.replace(' (this code)', '')} = "
                         f"{result['difference']:+.2f}{interval}",
                         '    ' + spread_verdict(cell['spread source'], len(mine), theirs_cell['spread source'],
                                                 len(theirs), result['separated'])]
    probe = {row.replace(' (this code)', ''): [float(v) for v in cell['values'].split(';')]
             for (row, benchmark, _), cell in cells.items() if benchmark == 'voc_probe'}
    return lines + ['', 'Verdicts (Welch 95% CI of the difference of means; what varied is named):', ''] + verdicts + \
        probe_note(probe)


def probe_note(probe: dict) -> list[str]:
    """Lines that say why, when a pretrained encoder's mean probe mIoU is
    below the random init's ({row: values}); none otherwise."""
    import textwrap
    mean = {row: sum(values) / len(values) for row, values in probe.items() if values}
    below = [row for row in ('R2O', 'BYOL') if row in mean and RANDOM in mean and mean[row] < mean[RANDOM]]
    if not below:
        return []
    text = (f"Why {' and '.join(below)} probe{'s' if len(below) == 1 else ''} below the random init: at this size "
            'pretraining moves the features (the mBO changes) long before it learns the shapes that tell these '
            'classes apart. The learning size (tools/demo.sh --size learn) measures it over three pretraining '
            'seeds per method, with k-NN top-1 on shapes and the mBO every few epochs: docs/demo.md, "The learning '
            'size", gives its curves and what a CPU cannot reach.')
    return [''] + textwrap.wrap(text, WIDTH, break_on_hyphens=False)


def learn(args, size: dict, out: str):
    """The learning size: does pretraining learn? R2O and BYOL over
    pretraining seeds, k-NN top-1 and mBO every few epochs, the frozen probe
    at the end, random init as the baseline; learning.json, the figure and
    the verdicts (r2o_mm.results.learning)."""
    from r2o_mm.results.learning import (LEARNING_K_OPTIONS, LEARNING_OPTIONS, knn_monitor_options, learning_curves,
                                         learning_paths, learning_record, probe_miou, run_record,
                                         write_learning_data)
    seeds = range(size['pretrain_seeds'])
    methods = METHODS[:2]
    logs = os.path.join(out, 'logs')
    # Stage weights for the ETA, in the proportions measured on a 2-core Xeon: 0.3 min of data, about 9 min a
    # pretraining run (two at a time), 0.4 min a probe.
    plan = [('data and SLIC cache', 1),
            *[(f'pretrain {m}, seed {s} (k-NN and mBO every {size["quality_every"]} epochs)', 30)
              for m in methods for s in seeds],
            ('random init encoders and frozen probes', 4 * len(seeds)), ('learning curves and verdicts', 1)]
    stages = Stages(plan)
    stages.begin()
    root = os.path.join(out, 'data')
    marker, written = os.path.join(root, 'complete.json'), {k: v for k, v in size.items() if k != 'pretrain_seeds'}
    if os.path.isfile(marker) and json.load(open(marker)) == written:
        say(f'reusing the data under {root}')
        data = learning_paths(root)
    else:
        data = write_learning_data(root, size)
        with open(marker, 'w') as handle:
            json.dump(written, handle)
        say(f"{size['scenes']} scenes for pretraining, {size['knn_train']} + {size['knn_val']} images of each of "
            f'6 shapes for the k-NN, VOC and COCO layouts under {root}')
    slic_cache = build_slic_cache(out, data['pretrain'])
    stages.end()

    quality = os.path.join(data['coco'], 'annotations', 'instances_val2017.json')
    monitor = [*knn_monitor_options(data['knn'], size['knn_train'], size['knn_val'], size['quality_every']),
               *LEARNING_K_OPTIONS]
    jobs, checkpoints = [], {}
    for method in methods:
        for seed in seeds:
            work = os.path.join(out, 'pretrain', run_name(method, seed))
            jobs.append((pretrain_args(method, seed, size, work, data['pretrain'], slic_cache, quality, monitor),
                         os.path.join(logs, f'pretrain_{run_name(method, seed)}.log'), run_tag(method, seed)))
            checkpoints[(method, seed)] = os.path.join(work, f'epoch_{size["epochs"]}.pth')
    run_parallel(jobs, args.jobs, stages)

    stages.begin()
    checkpoints.update(write_random_inits(out, seeds))
    probe_encoders(checkpoints, data['voc'], size, out)
    stages.end()

    stages.begin()
    results = os.path.join(out, 'results')
    os.makedirs(results, exist_ok=True)
    steps_per_epoch = -(-size['scenes'] // size['batch'])
    runs = {m: [run_record(os.path.join(out, 'pretrain', run_name(m, s)), s, steps_per_epoch,
                           probe_miou(os.path.join(out, 'probes', run_name(m, s)))) for s in seeds] for m in methods}
    random_probes = {s: probe_miou(os.path.join(out, 'probes', run_name(RANDOM, s))) for s in seeds}
    from r2o_mm.utils.machine import machine_fingerprint
    minutes = (time.time() - stages.start) / 60
    context = {'size': args.size, 'settings': size, 'options': [*LEARNING_OPTIONS, *LEARNING_K_OPTIONS],
               'steps_per_epoch': steps_per_epoch,
               'machine': machine_fingerprint()['name'], 'minutes': round(minutes, 1),
               'title': f'{args.size} size: {size["epochs"]} epochs of {steps_per_epoch} steps, batch {size["batch"]}, '
                        f'{len(seeds)} pretraining seeds per method'}
    record = learning_record(runs, random_probes, context)
    with open(os.path.join(results, 'learning.json'), 'w') as handle:
        json.dump(record, handle, indent=1)
    learning_curves(record, os.path.join(results, 'learning_curves.png'))
    stages.end()
    print('\n' + '\n'.join(learning_summary(record)))
    import textwrap
    print(f'\ndone in {minutes:.1f} min on {record["machine"]}.')
    print(textwrap.fill(f'Results: {results}/learning.json, learning_curves.png; logs: {logs}', WIDTH,
                        break_long_words=True, break_on_hyphens=False))


def learning_summary(record: dict) -> list[str]:
    """The learning size's printed summary: per encoder the first and last
    k-NN top-1, mBO at K=4 and probe mIoU (mean over seeds), then the verdicts."""
    from r2o_mm.results.learning import verdict_lines
    from r2o_mm.results.statistics import summarise

    def mean(values):
        values = [v for v in values if v is not None]
        return f"{summarise(values)['mean']:.1f}" if values else '-'

    lines = [f'{"encoder":<12} {"k-NN top-1: first -> last":>26} {"mBO K=4: first -> last":>24} '
             f'{"probe mIoU":>11}  varied', '-' * 100]
    for method, runs in record['methods'].items():
        ends = {}
        for key, pick in (('knn', lambda e: e['knn_top1']), ('mbo', lambda e: e['mBO'].get('4'))):
            values = [[pick(e) for e in run['evaluations'] if pick(e) is not None] for run in runs]
            ends[key] = f"{mean(v[0] for v in values if v)} -> {mean(v[-1] for v in values if v)}"
        lines.append(f"{method:<12} {ends['knn']:>26} {ends['mbo']:>24} {mean(r['probe_miou'] for r in runs):>11}"
                     f"  pretraining seed (n={len(runs)})")
    base = record['random_init']
    lines.append(f"{RANDOM:<12} {mean(r['knn_top1'] for r in base):>26} {mean(r['mBO'].get('4') for r in base):>24} "
                 f"{mean(r['probe_miou'] for r in base):>11}  initialisation seed (n={len(base)})")
    return lines + ['', 'Verdicts (95% CI; Welch for differences of means, paired for (b)):', ''] + \
        verdict_lines(record['verdicts'])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', help='output folder (default: work_dirs/demo, and work_dirs/demo_learn for the '
                        'learning sizes)')
    parser.add_argument('--size', choices=sorted(SIZES), default='quick')
    parser.add_argument('--pretrain-seeds', type=int, help='pretraining (and random-init) seeds per method '
                        '(default: 3 in the quick, full and learn sizes)')
    parser.add_argument('--seeds', type=int, help='fine-tuning seeds per method and task of the size '
                        '(default: none in the quick size; 2 VOC seeds and 1 COCO seed in the full size)')
    parser.add_argument('--jobs', type=int, default=min(2, os.cpu_count() or 1),
                        help='pretraining and fine-tuning runs at a time, each with its share of the cores '
                        '(default: 2, or 1 on a single core)')
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error('--jobs must be at least 1')
    size = dict(SIZES[args.size])
    out = os.path.abspath(args.out or os.path.join(ROOT, 'work_dirs', 'demo_learn' if size.get('mode') == 'learn'
                                                    else 'demo'))
    size['pretrain_seeds'] = args.pretrain_seeds or size['pretrain_seeds']
    if size.get('mode') == 'learn':
        return learn(args, size, out)
    seeds = range(size['pretrain_seeds'])
    logs = os.path.join(out, 'logs')

    from r2o_mm.transfer.small import as_cli, small_transfer_options
    finetuned = size.get('finetuned', METHODS)  # the methods fine-tuned (the test size: R2O's path only)
    finetuning = [(task, m, seed) for m in finetuned for task, seeds_of_task in
                  (('voc', size['voc_seeds']), ('coco_1x', size['coco_seeds']))
                  for seed in range((args.seeds or seeds_of_task) if seeds_of_task else 0)]
    plan = [('data and SLIC cache', 1),
            *[(f'pretrain {m}, seed {s} (mask quality every {size["quality_every"]} epochs)', 3)
              for m in METHODS[:2] for s in seeds],
            # The probes' weight: about a third of a pretraining run per encoder and probe seed.
            ('random init encoders and export', 1), ('frozen linear probes', 3 * size['pretrain_seeds'] * size['probe_seeds'] // 3),
            *[(f'{task.split("_")[0].upper()} fine-tuning, {m} seed 0, fine-tuning seed {seed}', 2)
              for task, m, seed in finetuning],
            ('collate results', 1)]
    stages = Stages(plan)

    stages.begin()
    data = write_data(out, {k: v for k, v in size.items() if k != 'pretrain_seeds'})
    slic_cache = build_slic_cache(out, data['pretrain'])
    stages.end()

    checkpoints = {}
    quality = os.path.join(data['coco'], 'annotations', 'instances_val2017.json')
    jobs = []
    for method in METHODS[:2]:
        for seed in seeds:
            work = os.path.join(out, 'pretrain', run_name(method, seed))
            jobs.append((pretrain_args(method, seed, size, work, data['pretrain'], slic_cache, quality),
                         os.path.join(logs, f'pretrain_{run_name(method, seed)}.log'), run_tag(method, seed)))
            checkpoints[(method, seed)] = os.path.join(work, f'epoch_{size["epochs"]}.pth')
    run_parallel(jobs, args.jobs, stages)

    stages.begin()
    checkpoints.update(write_random_inits(out, seeds))
    backbones = {}
    for method in METHODS:  # fine-tuning uses each method's seed-0 encoder
        backbones[method] = os.path.join(out, 'transfer', method.replace(' ', '_').lower(), 'backbone.pth')
        os.makedirs(os.path.dirname(backbones[method]), exist_ok=True)
        run_in_process('tools/export_backbone.py', [checkpoints[(method, 0)], backbones[method]],
                       os.path.join(logs, f'export_{run_name(method, 0)}.log'), run_tag(method, 0))
    stages.end()

    stages.begin()
    probe_encoders(checkpoints, data['voc'], size, out)
    stages.end()

    jobs = []  # in the order of the plan's fine-tuning stages
    for task, method, seed in finetuning:
        iterations = size['voc_iters'] if task == 'voc' else size['coco_iters']
        options = small_transfer_options(task, data[task.split('_')[0]], iterations=iterations, batch=4,
                                         image=size['image'])
        options['randomness.seed'] = seed
        work = os.path.join(os.path.dirname(backbones[method]), f'{task}_seed{seed}')
        jobs.append((['tools/transfer_run.py', task, '--backbone', backbones[method], '--work-dir', work,
                      '--pretrained', checkpoints[(method, 0)], '--cfg-options', *as_cli(options)],
                     os.path.join(logs, f'{task}_{run_name(method, 0)}_finetune{seed}.log'),
                     f'{task} {run_tag(method, 0)} ft{seed}'))
    run_parallel(jobs, args.jobs, stages)

    stages.begin()
    results = os.path.join(out, 'results')
    run_in_process('tools/collect_results.py', [os.path.join(out, 'pretrain'), os.path.join(out, 'transfer'),
                   os.path.join(out, 'probes'), '--out', results, '--quiet'],
                   os.path.join(logs, 'collect_results.log'))
    # Fig. 3 over pretraining: R2O's masks before and after it, BYOL's after it (seed 0 each).
    from r2o_mm.results.figures import stack_pictures
    pictures = [(os.path.join(out, 'pretrain', run_name(method, 0), 'mask_quality', f'epoch_{epoch}.png'),
                 f'{method}, pretraining seed 0, epoch {epoch}' + (' (random init)' if epoch == 0 else ''))
                for method, epoch in (('R2O', 0), ('R2O', size['epochs']), ('BYOL', size['epochs']))]
    stack_pictures(pictures, os.path.join(results, 'fig3_masks_r2o.png'))
    stages.end()
    histories = {m: [json.load(open(os.path.join(out, 'pretrain', run_name(m, s), 'mask_quality.json')))
                     for s in seeds] for m in METHODS[:2]}
    print('\n' + '\n'.join(summary_lines(results, histories)))
    if not finetuning:
        print('\nNo fine-tuning at this size: --size full fine-tunes through mmseg (VOC layout) and mmdet (COCO layout).')
    from r2o_mm.utils.machine import machine_fingerprint
    import textwrap
    print(f'\ndone in {(time.time() - stages.start) / 60:.1f} min on {machine_fingerprint()["name"]}.')
    print(textwrap.fill(
        f'Tables: {results}/*.md, *.csv (mask_quality.md: the mBO); figures: mask_quality.png (mBO over '
        f'epochs), probes.png, fig3_masks_r2o.png; logs: {logs}', WIDTH, break_long_words=True,
        break_on_hyphens=False))


if __name__ == '__main__':
    main()
