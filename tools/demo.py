"""The whole pipeline on small data that needs no download (README's first command).

    python tools/demo.py [--out work_dirs/demo] [--size quick|test] [--seeds N]

Stages: write the data once (scikit-image's photographs and generated scenes
whose classes are told by shape, not colour; VOC/COCO-layout scene datasets
with exact masks); pretrain R2O (configs/r2o_tiny_cpu.py) and BYOL (the same
code with one whole-image mask), following the mBO of the masks clustered
from each one's features over the epochs (MaskQualityHook); a random-init
baseline; export each encoder; frozen dense linear probes with several seeds;
fine-tune and evaluate each on the VOC- and COCO-layout sets through mmseg
and mmdet; collate tables and figures with tools/collect_results.py and print
a compact summary. Everything goes under --out; full logs in --out/logs.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# Sizes: 'quick' is the demo (under 10 minutes on 2 cores), 'test' the test suite's.
SIZES = {
    'quick': dict(photos=32, scenes=160, scene_val=32, epochs=30, batch=16, quality_every=5, voc_iters=150,
                  voc_seeds=2, coco_iters=20, coco_seeds=1, image=96, probe_seeds=5, probe_epochs=30),
    'test': dict(photos=8, scenes=8, scene_val=6, epochs=1, batch=4, quality_every=1, voc_iters=2, voc_seeds=1,
                 coco_iters=2, coco_seeds=1, image=96, probe_seeds=2, probe_epochs=2),
}
METHODS = ('R2O', 'BYOL', 'random init')
SHOWN = ('Epoch(train)', 'Iter(train)', 'mIoU:', 'coco/bbox_mAP:', 'load check', 'wrote', 'metrics:',
         'mask quality, epoch', 'linear probe mIoU')


class Stages:
    """Prints each stage with elapsed time and an ETA from the planned weights."""

    def __init__(self, plan):
        self.plan, self.done, self.start = plan, 0.0, time.time()
        self.total = sum(weight for _, weight in plan)
        self.index = 0

    def begin(self):
        name, weight = self.plan[self.index]
        elapsed = time.time() - self.start
        eta = '' if not self.done else f', ETA {elapsed / self.done * (self.total - self.done) / 60:.1f} min'
        print(f'\n[{self.index + 1}/{len(self.plan)}] {name} (elapsed {elapsed / 60:.1f} min{eta})',
              flush=True)

    def end(self):
        self.done += self.plan[self.index][1]
        self.index += 1


def run(args, log_path):
    """Runs a tool, showing its progress lines, keeping the full log."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, 'w') as log:
        process = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True,
                                   env=dict(os.environ, PYTHONWARNINGS='ignore'))
        for line in process.stdout:
            log.write(line)
            if any(key in line for key in SHOWN):
                print('   ' + line.rstrip()[:160], flush=True)
        if process.wait():
            sys.exit(f'demo stage failed: {" ".join(args[:2])}; full log: {log_path}')


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
        print(f'   reusing the data under {data}')
        return paths
    write_photo_folder(os.path.join(paths['pretrain'], 'photos'), size['photos'], max_side=96)
    write_scene_images(os.path.join(paths['pretrain'], 'scenes'), size['scenes'], size=(64, 80), seed=100)
    write_synthetic_datasets(os.path.join(data, 'downstream'), size['scene_val'] * 2, size['scene_val'],
                             size=(96, 128), seed=0, layouts=('voc', 'coco'))
    with open(marker, 'w') as handle:
        json.dump(size, handle)
    print(f"   {size['photos']} photographs + {size['scenes']} scenes for pretraining under {paths['pretrain']}; "
          f'VOC and COCO layouts under {data}/downstream')
    return paths


def summary_lines(results: str, histories: dict, reference_k: int = 4) -> list[str]:
    """The printed summary (at most 120 columns; paths stay in the CSVs)."""
    import pandas as pd
    from r2o_mm.results.statistics import compare
    lines = [f'{"method":<12} {"measure":<26} {"mean ± std":>14} {"95% CI":>17} {"n":>2}  vs random init', '-' * 118]
    for label, history in histories.items():
        start, end = history[0], history[-1]
        lines.append(f"{label:<12} {'mBO, K=' + str(reference_k) + ', epoch 0 -> ' + str(end['epoch']):<26} "
                     f"{start['mBO'][str(reference_k)]:>6.1f} -> {end['mBO'][str(reference_k)]:<5.1f}")
    frames = [pd.read_csv(os.path.join(results, f'{name}.csv'), dtype=str, keep_default_na=False)
              for name in ('probes', 'table1')]
    cells = pd.concat(frames)
    cells = cells[cells['values'] != '']
    values = {(r['row'], r['benchmark'], r['metric']): [float(v) for v in r['values'].split(';')]
              for _, r in cells.iterrows()}
    names = {'voc_probe': 'linear probe (frozen) mIoU', 'voc': 'VOC fine-tuned mIoU', 'coco_1x': 'COCO fine-tuned'}
    order = {name: i for i, name in enumerate(['R2O (this code)', 'BYOL (this code)', 'random init'])}
    keys = sorted(values, key=lambda key: (list(names).index(key[1]) if key[1] in names else 9, key[2],
                                           order.get(key[0], 9)))
    for row, benchmark, metric in keys:
        run = values[(row, benchmark, metric)]
        measure = names.get(benchmark, benchmark) + (f' {metric}' if benchmark == 'coco_1x' else '')
        mean = sum(run) / len(run)
        spread = f"{mean:.2f} ± {pd.Series(run).std():.2f}" if len(run) > 1 else f'{mean:.2f}'
        cell = cells[(cells.row == row) & (cells.benchmark == benchmark) & (cells.metric == metric)].iloc[0]
        versus = ''
        control = values.get(('random init', benchmark, metric))
        if row != 'random init' and control:
            result = compare(run, control)
            verdict = {True: 'separated', False: 'within spread', None: 'one run'}[result['separated']]
            versus = f"{result['difference']:+.2f} ({verdict})"
        method = row.replace(' (this code)', '')
        lines.append(f'{method:<12} {measure:<26} {spread:>14} {cell["95% CI"]:>17} {len(run):>2}  {versus}')
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default=os.path.join(ROOT, 'work_dirs', 'demo'))
    parser.add_argument('--size', choices=sorted(SIZES), default='quick')
    parser.add_argument('--seeds', type=int, help='fine-tuning seeds per method and task '
                        '(default: 2 for VOC and 1 for COCO in the quick size)')
    args = parser.parse_args(argv)
    size, out = SIZES[args.size], os.path.abspath(args.out)
    logs = os.path.join(out, 'logs')

    from r2o_mm.transfer.small import as_cli, small_transfer_options
    plan = [('data', 1), *[(f'pretrain {m} (mask quality every {size["quality_every"]} epochs)', 8)
                           for m in METHODS[:2]], ('export encoders', 1), ('frozen linear probes', 3),
            *[(f'{task} fine-tuning, {m}', 3 if task == 'voc' else 3) for m in METHODS for task in ('voc', 'coco')],
            ('collate results', 1)]
    stages = Stages(plan)

    stages.begin()
    data = write_data(out, size)
    stages.end()

    checkpoints = {}
    pretrain_options = {
        'R2O': [],
        'BYOL': ['model.mask_source=whole_image', 'custom_hooks.1.couple_to_clusters=False'],
    }
    quality = os.path.join(data['coco'], 'annotations', 'instances_val2017.json')
    for method in METHODS[:2]:
        stages.begin()
        work = os.path.join(out, 'pretrain', method.lower())
        run(['tools/train.py', 'configs/r2o_tiny_cpu.py', '--work-dir', work, '--cfg-options',
             f'train_dataloader.dataset.data_root={data["pretrain"]}', f'train_cfg.max_epochs={size["epochs"]}',
             f'train_dataloader.batch_size={size["batch"]}', f'default_hooks.checkpoint.interval={size["epochs"]}',
             'default_hooks.logger.interval=20', 'custom_hooks.3.interval=100000',
             # The recipe's lr for a batch of 256: scaled to this batch of 16 (0.3 x 16 / 256, then x K/16
             # and LARS's trust ratio) the weights barely move in a few hundred steps.
             'custom_hooks.1.lr_per_256=4.8',
             # Masks from a 128 px raw view (views stay 64 px): at 64 px layer3 is a 4 x 4 grid, and most
             # of the 100 superpixels then miss its bilinear sample points (zero descriptors).
             'train_dataloader.dataset.pipeline.2.size=128', 'default_hooks.mask_quality.size=128',
             f'default_hooks.mask_quality.ann_file={quality}',
             f'default_hooks.mask_quality.image_dir={os.path.join(data["coco"], "val2017")}',
             f'default_hooks.mask_quality.interval={size["quality_every"]}',
             'default_hooks.mask_quality.reference_ks=[8,4,2]', 'default_hooks.mask_quality.max_images=32',
             *pretrain_options[method]],
            os.path.join(logs, f'pretrain_{method.lower()}.log'))
        checkpoints[method] = os.path.join(work, f'epoch_{size["epochs"]}.pth')
        stages.end()

    stages.begin()
    random_dir = os.path.join(out, 'pretrain', 'random_init')
    os.makedirs(random_dir, exist_ok=True)
    import torch
    from r2o_mm.models.networks import ResNetEncoder
    torch.manual_seed(0)
    checkpoints['random init'] = os.path.join(random_dir, 'random_init.pth')
    torch.save({'state_dict': {f'online_encoder.{k}': v for k, v in ResNetEncoder(18).state_dict().items()}},
               checkpoints['random init'])
    with open(os.path.join(random_dir, 'pretrain_info.json'), 'w') as handle:
        json.dump({'method': 'random init', 'config': 'none', 'dataset': 'none', 'epochs': 0}, handle)
    backbones = {}
    for method, checkpoint in checkpoints.items():
        backbones[method] = os.path.join(out, 'transfer', method.replace(' ', '_').lower(), 'backbone.pth')
        os.makedirs(os.path.dirname(backbones[method]), exist_ok=True)
        run(['tools/export_backbone.py', checkpoint, backbones[method]],
            os.path.join(logs, f'export_{method.replace(" ", "_").lower()}.log'))
    stages.end()

    stages.begin()
    for method, checkpoint in checkpoints.items():
        name = method.replace(' ', '_').lower()
        run(['tools/eval_linear_probe.py', checkpoint, '--data', data['voc'], '--seeds', str(size['probe_seeds']),
             '--epochs', str(size['probe_epochs']), '--out', os.path.join(out, 'probes', name)],
            os.path.join(logs, f'probe_{name}.log'))
    stages.end()

    for method in METHODS:
        for task, iters, seeds in (('voc', size['voc_iters'], size['voc_seeds']),
                                   ('coco_1x', size['coco_iters'], size['coco_seeds'])):
            stages.begin()
            options = small_transfer_options(task, data[task.split('_')[0]], iterations=iters,
                                             batch=4, image=size['image'])
            for seed in range(args.seeds or seeds):
                options['randomness.seed'] = seed
                work = os.path.join(os.path.dirname(backbones[method]), f'{task}_seed{seed}')
                run(['tools/transfer_run.py', task, '--backbone', backbones[method], '--work-dir', work,
                     '--pretrained', checkpoints[method], '--cfg-options', *as_cli(options)],
                    os.path.join(logs, f'{task}_{method.replace(" ", "_").lower()}_seed{seed}.log'))
            stages.end()

    stages.begin()
    results = os.path.join(out, 'results')
    run(['tools/collect_results.py', os.path.join(out, 'pretrain'), os.path.join(out, 'transfer'),
         os.path.join(out, 'probes'), '--out', results, '--quiet'], os.path.join(logs, 'collect_results.log'))
    import shutil
    final = os.path.join(out, 'pretrain', 'r2o', 'mask_quality', f'epoch_{size["epochs"]}.png')
    if os.path.isfile(final):
        shutil.copy(final, os.path.join(results, 'fig3_masks_r2o.png'))
    stages.end()
    histories = {m: json.load(open(os.path.join(out, 'pretrain', m.lower(), 'mask_quality.json')))
                 for m in METHODS[:2]}
    print('\n' + '\n'.join(summary_lines(results, histories)))
    print(f'\ndone in {(time.time() - stages.start) / 60:.1f} min. Tables: {results}/*.md, *.csv; figures: '
          'mask_quality.png (mBO over epochs), probes.png, fig3_masks_r2o.png; logs: ' + logs)


if __name__ == '__main__':
    main()
