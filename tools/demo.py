"""The whole pipeline on small data that needs no download (README's first command).

    python tools/demo.py [--out work_dirs/demo] [--size quick|test] [--seeds 2]

Stages: write the data (real photographs shipped with scikit-image plus
generated scenes, and VOC/COCO-layout scene datasets with exact masks);
pretrain R2O (configs/r2o_tiny_cpu.py) and BYOL (the same code with one
whole-image mask); a random-init baseline; export each encoder; fine-tune and
evaluate each on the VOC-layout segmentation and COCO-layout detection sets
through mmseg and mmdet; collate the table and figures with
tools/collect_results.py. Everything goes under --out; full logs in
--out/logs.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# Sizes: 'quick' is the demo (about 7 minutes on 2 cores), 'test' the test suite's.
SIZES = {
    'quick': dict(photos=32, scenes=32, scene_val=12, epochs=30, batch=8, voc_iters=200, voc_seeds=2,
                  coco_iters=20, coco_seeds=1, image=96),
    'test': dict(photos=8, scenes=8, scene_val=4, epochs=1, batch=4, voc_iters=2, voc_seeds=1,
                 coco_iters=2, coco_seeds=1, image=96),
}
METHODS = ('R2O', 'BYOL', 'random init')
SHOWN = ('Epoch(train)', 'Iter(train)', 'mIoU:', 'coco/bbox_mAP:', 'load check', 'wrote', 'metrics:')


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
    plan = [('data', 1), *[(f'pretrain {m}', 6) for m in METHODS[:2]], ('export encoders', 1),
            *[(f'{task} transfer, {m}', 5 if task == 'voc' else 4) for m in METHODS for task in ('voc', 'coco')],
            ('collate results', 1)]
    stages = Stages(plan)

    stages.begin()
    from r2o_mm.data.sample_images import write_photo_folder
    from r2o_mm.data.synthetic_scenes import write_scene_images, write_synthetic_datasets
    pretrain_data = os.path.join(out, 'data', 'pretrain')
    write_photo_folder(os.path.join(pretrain_data, 'photos'), size['photos'], max_side=160)
    write_scene_images(os.path.join(pretrain_data, 'scenes'), size['scenes'], size=(96, 128), seed=100)
    downstream = write_synthetic_datasets(os.path.join(out, 'data', 'downstream'), size['scenes'],
                                          size['scene_val'], size=(96, 128), seed=0, layouts=('voc', 'coco'))
    print(f'   pretraining images under {pretrain_data}; VOC and COCO layouts under {out}/data/downstream')
    stages.end()

    checkpoints = {}
    pretrain_options = {
        'R2O': [],
        'BYOL': ['model.mask_source=whole_image', 'custom_hooks.1.couple_to_clusters=False'],
    }
    for method in METHODS[:2]:
        stages.begin()
        work = os.path.join(out, 'pretrain', method.lower())
        run(['tools/train.py', 'configs/r2o_tiny_cpu.py', '--work-dir', work, '--cfg-options',
             f'train_dataloader.dataset.data_root={pretrain_data}', f'train_cfg.max_epochs={size["epochs"]}',
             f'train_dataloader.batch_size={size["batch"]}', f'default_hooks.checkpoint.interval={size["epochs"]}',
             'custom_hooks.3.interval=1000', *pretrain_options[method]],
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

    roots = {'voc': downstream['voc'], 'coco': downstream['coco']}
    for method in METHODS:
        for task, iters, seeds in (('voc', size['voc_iters'], size['voc_seeds']),
                                   ('coco_1x', size['coco_iters'], size['coco_seeds'])):
            stages.begin()
            options = small_transfer_options(task, roots[task.split('_')[0]], iterations=iters,
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
         '--out', results, '--quiet'], os.path.join(logs, 'collect_results.log'))
    stages.end()
    with open(os.path.join(results, 'table1.md')) as handle:
        print('\n' + handle.read())
    print(f'done in {(time.time() - stages.start) / 60:.1f} min. Tables and figures: {results}; '
          f'pretraining runs: {out}/pretrain; transfer runs: {out}/transfer; logs: {logs}')


if __name__ == '__main__':
    main()
