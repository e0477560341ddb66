"""Does a GPU machine run r2o_mm as the CPU does? Phases within a time budget.

    tools/gpu_check.sh [--minutes 10] [--device cuda|cpu] [--quick] [--out DIR]

Each phase prints one PASS/FAIL/SKIP line, and the run ends with a verdict
line; report.md and report.json go to --out (results/benchmarks.md gets the
GPU section from them with --benchmarks):

1. environment: torch sees the GPU(s), NCCL, mmcv's compiled ops load;
   RoIAlign and NMS on the device equal the CPU's (and torchvision's);
2. numerics: one R2O step (fixed weights and inputs, fp32, TF32 off) on the
   device against the same step on the CPU: K-means labels on the same
   descriptors, masks, loss and gradient norms within stated tolerances;
   compaction of absent rows on and off equal on the device;
3. speed: R2O (K=128) and BYOL steps at two batch sizes, fp32 and bf16
   autocast: images/s, the R2O/BYOL ratio, peak memory, mask prediction's
   share of the step; K-means at the paper's size; data loading with the
   SLIC cache and on the fly for this machine's cores;
4. distributed: every visible GPU through tools/dist_train.sh on the tiny
   config (one GPU: the launcher runs one process and the phase says skipped);
5. transfer: FCN (VOC layout) and Mask R-CNN (COCO layout) on generated data
   through tools/transfer.sh, with the backbone load check;
6. learning: the demo's learning size with the budget left (docs/demo.md):
   R2O and BYOL over up to 3 pretraining seeds each, k-NN top-1 and mBO
   every few epochs, the probe at the end, random inits as the baseline;
   learning.json, learning_curves.png and the verdicts over pretraining seeds.
--quick (with --device cpu: the rehearsal the test suite runs) shrinks every
size; the goals of phase 3 are checked on a GPU only.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Shares of the budget; the learning phase takes what the others leave.
PHASES = ('environment', 'numerics', 'speed', 'distributed', 'transfer', 'learning')
SHARES = {'environment': 0.03, 'numerics': 0.08, 'speed': 0.22, 'distributed': 0.12, 'transfer': 0.2}
SIZES = {
    'full': dict(depth=50, image=224, clusters=128, step_batch=4, batches=(32, 64), repeats=3,
                 kmeans=(3200, 1024, 128), loader_images=64, transfer_iters=50, transfer_image=160,
                 pretrain_batch=64, pretrain_view=64, probe_epochs=30, max_epochs=100,
                 min_seeds=1, max_seeds=3, min_epochs=10,
                 learning=dict(scenes=2048, scene_size=(96, 120), knn_train=50, knn_val=30, scene_val=48)),
    'quick': dict(depth=18, image=64, clusters=8, step_batch=2, batches=(2,), repeats=1,
                  kmeans=(256, 64, 16), loader_images=4, transfer_iters=1, transfer_image=96,
                  pretrain_batch=4, pretrain_view=64, probe_epochs=2, max_epochs=1,
                  min_seeds=2, max_seeds=2, min_epochs=1,  # the rehearsal runs the multi-seed path
                  learning=dict(scenes=8, scene_size=(64, 80), knn_train=3, knn_val=2, scene_val=4)),
}
# Phase 2's tolerances: float32 on two devices (different kernels and
# summation orders) agree to about 1e-6 relative per operation; a step of a
# ResNet-50 compounds that, and near-tied K-means distances may flip a label.
TOLERANCES = {'kmeans_label_agreement': 0.999, 'mask_agreement': 0.99, 'loss_rel': 1e-3,
              'grad_norm_rel': 1e-2, 'compaction_rel': 1e-4, 'roi_align_abs': 1e-4}
# Phase 3's goals on a GPU.
GOALS = {'r2o_byol_ratio_k128': 1.15, 'mask_prediction_share': 0.10, 'data_time_share_cached': 0.05,
         'kmeans_paper_size_ms': 5.0}


@dataclass
class Phase:
    name: str
    status: str = 'FAIL'  # PASS, FAIL or SKIP
    line: str = ''
    seconds: float = 0.0
    figures: dict = field(default_factory=dict)


class Check:
    def __init__(self, args):
        self.args = args
        self.size = SIZES['quick' if args.quick else 'full']
        self.device = torch.device(args.device)
        # Processes per node in the launcher phases: every visible GPU, none on a CPU.
        self.gpus = torch.cuda.device_count() if self.device.type == 'cuda' else 0
        self.start = time.time()
        self.budget = args.minutes * 60
        self.out = os.path.abspath(args.out)
        self.python = sys.executable
        self.phases: list[Phase] = []
        self.shared: dict = {}
        os.makedirs(self.out, exist_ok=True)

    def left(self) -> float:
        return self.budget - (time.time() - self.start)

    def run_tool(self, args, log_name, env=None, timeout=None):
        """A tool or launcher in a subprocess, its output kept in out/logs/."""
        os.makedirs(os.path.join(self.out, 'logs'), exist_ok=True)
        log = os.path.join(self.out, 'logs', log_name)
        environment = dict(os.environ, R2O_SKIP_SETUP='1', PYTHON=self.python, PYTHONWARNINGS='ignore',
                           **({} if self.gpus else {'CUDA_VISIBLE_DEVICES': ''}), **(env or {}))
        with open(log, 'w') as handle:
            result = subprocess.run(args, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, text=True,
                                    env=environment, timeout=timeout or max(self.left(), 60) + 120)
        text = open(log).read()
        if result.returncode:
            last = [line for line in text.splitlines() if line.strip()][-1:] or ['(no output)']
            raise PhaseError(f'{os.path.basename(args[0])} ended with {result.returncode}: {last[0][:200]} '
                             f'(log: {log})')
        return text


class PhaseError(RuntimeError):
    """A phase failed for a reason told in one line."""


# ------------------------------------------------------------------ phase 1
def phase_environment(check: Check) -> Phase:
    phase, device, figures = Phase('environment'), check.device, {}
    figures['torch'] = torch.__version__
    figures['torch CUDA'] = torch.version.cuda
    problems = []
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise PhaseError('torch sees no GPU (torch.cuda.is_available() is False): check the driver '
                             f'and that torch {torch.__version__} is a CUDA build')
        figures['GPUs'] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        figures['capability'] = '.'.join(map(str, torch.cuda.get_device_capability(0)))
        figures['NCCL'] = torch.distributed.is_nccl_available() and '.'.join(map(str, torch.cuda.nccl.version()))
        if not figures['NCCL']:
            problems.append('NCCL is not available')
    try:
        import mmcv
        import mmcv.ops
        from mmcv.ops import RoIAlign, nms
        figures['mmcv'] = mmcv.__version__
        figures['mmcv ops compiled for CUDA'] = mmcv.ops.get_compiling_cuda_version()
    except Exception as error:  # an ImportError or a missing symbol of the extension
        raise PhaseError(f"mmcv's compiled ops do not load: {str(error).splitlines()[0][:200]}")
    import torchvision
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(2, 8, 24, 24, generator=gen)
    corners = torch.rand(16, 2, generator=gen) * 16
    rois = torch.cat([torch.randint(0, 2, (16, 1), generator=gen).float(), corners,
                      corners + 2 + torch.rand(16, 2, generator=gen) * 6], dim=1)
    align = RoIAlign((7, 7), spatial_scale=1.0, sampling_ratio=2, aligned=True)
    cpu_align = align(features, rois)
    reference = torchvision.ops.roi_align(features, rois, (7, 7), 1.0, 2, aligned=True)
    device_align = align(features.to(device), rois.to(device)).cpu()
    errors = {'RoIAlign device vs CPU': float((device_align - cpu_align).abs().max()),
              'RoIAlign mmcv vs torchvision': float((cpu_align - reference).abs().max())}
    boxes = torch.cat([corners * 2, corners * 2 + 4 + torch.rand(16, 2, generator=gen) * 10], dim=1)
    scores = torch.rand(16, generator=gen)
    _, keep_cpu = nms(boxes, scores, 0.3)
    _, keep_device = nms(boxes.to(device), scores.to(device), 0.3)
    keep_reference = torchvision.ops.nms(boxes, scores, 0.3)
    figures.update({key: f'{value:.2e}' for key, value in errors.items()})
    figures['NMS kept'] = len(keep_cpu)
    if max(errors.values()) > TOLERANCES['roi_align_abs']:
        problems.append(f'RoIAlign differs by {max(errors.values()):.2e} (tolerance '
                        f'{TOLERANCES["roi_align_abs"]:.0e})')
    if not (torch.equal(keep_cpu, keep_device.cpu()) and torch.equal(keep_cpu.long(), keep_reference)):
        problems.append('NMS keeps other boxes on the device or in torchvision')
    phase.figures = figures
    if problems:
        raise PhaseError('; '.join(problems))
    where = ', '.join(figures.get('GPUs', ['CPU']))
    phase.status, phase.line = 'PASS', (f'{where}; torch {torch.__version__}; mmcv ops '
                                        f'({figures["mmcv ops compiled for CUDA"]}); RoIAlign and NMS '
                                        f'equal the CPU and torchvision (max. difference '
                                        f'{max(errors.values()):.1e} abs.)')
    return phase


# ------------------------------------------------------------------ phase 2
def _step_record(model, inputs, device):
    """Masks (argmax labels) of a K-means draw fixed at 0, then one training
    step's loss and gradient norms per part."""
    model = model.to(device).train()
    inputs = {k: v.to(device) if torch.is_tensor(v) else v for k, v in inputs.items()}
    with torch.no_grad(), model.kmeans_state_kept(draws=0):
        masks, _ = model.predict_masks(inputs['raw'], inputs['superpixels'], inputs['num_superpixels'])
    model.zero_grad(set_to_none=True)
    with model.kmeans_state_kept(draws=0):
        loss = model(inputs, mode='loss')['loss']
    loss.backward()
    norms = {}
    for part in ('online_encoder', 'online_projector', 'predictor'):
        grads = [p.grad.double().norm() for p in getattr(model, part).parameters() if p.grad is not None]
        norms[part] = float(torch.stack(grads).norm())
    return {'labels': masks.argmax(1).cpu(), 'loss': float(loss.detach()), 'norms': norms}


def _relative(a, b):
    return abs(a - b) / max(abs(b), 1e-12)


def phase_numerics(check: Check) -> Phase:
    from .benchmarks import superpixel_maps_of_photos, synthetic_batch
    from .models.r2o import R2O
    from .models.regions import kmeans, resize_onehot, superpixel_descriptors
    size, device = check.size, check.device
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    inputs = synthetic_batch(size['step_batch'], size['image'], superpixel_maps_of_photos(size['image'], 4), 'cpu')
    torch.manual_seed(0)
    reference = R2O(depth=size['depth'], num_clusters=size['clusters'])
    reference.init_weights()
    state = copy.deepcopy(reference.state_dict())

    def fresh(**options):
        model = R2O(depth=size['depth'], num_clusters=size['clusters'], **options)
        model.load_state_dict(state)
        return model

    cpu = _step_record(fresh(), inputs, torch.device('cpu'))
    on_device = _step_record(fresh(), inputs, device)
    uncompacted = _step_record(fresh(compact_absent_rows=False), inputs, device)
    # K-means alone, on the very same descriptors on both devices.
    with torch.no_grad():
        c4 = reference.target_encoder.forward_c4(inputs['raw'])
        slots = inputs['num_superpixels']
        points = superpixel_descriptors(c4, resize_onehot(inputs['superpixels'], slots, c4.shape[-1]))
        points = points.flatten(0, 1)
    labels_cpu = kmeans(points, size['clusters'], 200, 1e-6, torch.Generator().manual_seed(0), 'collapse').labels
    labels_device = kmeans(points.to(device), size['clusters'], 200, 1e-6, torch.Generator().manual_seed(0),
                           'collapse').labels.cpu()
    figures = {
        'kmeans_label_agreement': float((labels_cpu == labels_device).float().mean()),
        'mask_agreement': float((cpu['labels'] == on_device['labels']).float().mean()),
        'loss_rel': _relative(on_device['loss'], cpu['loss']),
        'grad_norm_rel': max(_relative(on_device['norms'][k], cpu['norms'][k]) for k in cpu['norms']),
        'compaction_rel': max([_relative(on_device['loss'], uncompacted['loss'])] +
                              [_relative(on_device['norms'][k], uncompacted['norms'][k]) for k in cpu['norms']]),
        'loss_cpu': cpu['loss'], 'loss_device': on_device['loss'],
    }
    failed = [f'{key} {figures[key]:.3g}' for key, bound in TOLERANCES.items() if key in figures and
              (figures[key] < bound if 'agreement' in key else figures[key] > bound)]
    phase = Phase('numerics', figures={k: (round(v, 8) if isinstance(v, float) else v) for k, v in figures.items()})
    setting = f"ResNet-{size['depth']}, {size['image']} px, batch {size['step_batch']}, K={size['clusters']}, fp32"
    summary = (f"{setting}: K-means labels {figures['kmeans_label_agreement']:.2%} equal, masks "
               f"{figures['mask_agreement']:.2%}, loss rel. diff {figures['loss_rel']:.1e}, grad norms "
               f"{figures['grad_norm_rel']:.1e}, compaction on/off {figures['compaction_rel']:.1e}")
    if failed:
        raise PhaseError(f'{summary}; outside tolerance: {", ".join(failed)}')
    phase.status, phase.line = 'PASS', summary
    return phase


# ------------------------------------------------------------------ phase 3
def phase_speed(check: Check) -> Phase:
    from .benchmarks import _timed, _training_step, data_loading, superpixel_maps_of_photos, synthetic_batch
    from .models.r2o import R2O
    from .models.regions import kmeans
    size, device = check.size, check.device
    torch.backends.cuda.matmul.allow_tf32 = True  # as in training
    torch.backends.cudnn.allow_tf32 = True
    superpixels = superpixel_maps_of_photos(size['image'], 4)
    figures, rows = {}, []
    deadline = time.time() + SHARES['speed'] * check.budget
    for batch in size['batches']:
        inputs = synthetic_batch(batch, size['image'], superpixels, device)
        for precision in ('fp32', 'bf16'):
            autocast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == 'bf16' \
                else contextlib.nullcontext()
            times = {}
            for method, options in (('R2O', dict(num_clusters=128)), ('BYOL', dict(mask_source='whole_image'))):
                torch.manual_seed(0)
                model = R2O(depth=size['depth'], **options).to(device).train()
                step = _training_step(model, inputs)
                if check.gpus:
                    torch.accelerator.reset_peak_memory_stats(device)
                with autocast:
                    times[method] = _timed(step, device, size['repeats'])
                peak = torch.accelerator.max_memory_allocated(device) / 1024 ** 3 if check.gpus else None
                rows.append(dict(batch=batch, precision=precision, method=method, ms=round(times[method], 1),
                                 images_per_s=round(batch * 1000 / times[method], 1),
                                 peak_GB=None if peak is None else round(peak, 2)))
                if method == 'R2O' and precision == 'fp32' and batch == size['batches'][0]:
                    with torch.no_grad(), model.kmeans_state_kept():
                        masks_ms = _timed(lambda: model.predict_masks(
                            inputs['raw'], inputs['superpixels'], inputs['num_superpixels']), device,
                            size['repeats'])
                    figures['mask_prediction_share'] = masks_ms / times['R2O']
                    figures['r2o_images_per_s'] = batch * 1000 / times['R2O']
                del model, step
            rows[-2]['R2O/BYOL'] = round(times['R2O'] / times['BYOL'], 3)
            if precision == 'fp32' and batch == size['batches'][0]:
                figures['r2o_byol_ratio_k128'] = times['R2O'] / times['BYOL']
            if time.time() > deadline:
                break
        if time.time() > deadline:
            break
    points, dims, k = size['kmeans']
    rng = np.random.default_rng(0)
    data = torch.from_numpy(rng.normal(size=(points, dims)).astype(np.float32)).to(device)
    figures['kmeans_paper_size_ms'] = _timed(lambda: kmeans(data, k, 200, 1e-6, torch.Generator().manual_seed(0),
                                                                'collapse'), device, size['repeats'])
    figures['kmeans_size'] = f'{points} x {dims}, K={k}'
    from .data.sample_images import write_photo_folder
    photos = write_photo_folder(os.path.join(check.out, 'data', 'photos'), size['loader_images'], max_side=256)
    rates = data_loading(photos, os.path.join(check.out, 'data', 'slic_cache'), size['image'])
    cores = os.cpu_count() or 1
    gpus = max(check.gpus, 1)
    for name in ('on the fly', 'from cache'):
        per_core = rates[f'full pipeline {name}']
        figures[f'loader_images_per_s_per_core ({name})'] = round(per_core, 1)
        # Loader workers on (cores / GPUs) cores against the GPU's step rate.
        figures[f'data_time_share ({name})'] = figures['r2o_images_per_s'] / (per_core * cores / gpus)
    figures['data_time_share_cached'] = figures['data_time_share (from cache)']
    figures['step_table'] = rows
    phase = Phase('speed', figures={k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items()})
    goals = []
    for key, bound in GOALS.items():
        met = figures[key] <= bound
        goals.append(f"{key} {figures[key]:.3g} ({'met' if met else 'MISSED'}, goal <= {bound:g})")
    phase.figures['goals'] = goals if check.gpus else 'checked on a GPU only'
    check.shared['r2o_images_per_s'] = figures['r2o_images_per_s']
    phase.status = 'PASS'
    phase.line = (f"R2O/BYOL {figures['r2o_byol_ratio_k128']:.2f} at K=128 (batch {size['batches'][0]}, fp32), "
                  f"masks {figures['mask_prediction_share']:.0%} of the step, K-means "
                  f"{figures['kmeans_paper_size_ms']:.1f} ms ({figures['kmeans_size']}), data time "
                  f"{figures['data_time_share_cached']:.0%} cached / "
                  f"{figures['data_time_share (on the fly)']:.0%} on the fly on {cores} cores")
    return phase


# ------------------------------------------------------------------ phase 4
def _require_gpus(check: Check, what: str):
    """On a GPU check (``--device cuda``) without a GPU, a launcher phase
    would run CPU processes: that is no GPU result, so the phase fails."""
    if check.device.type == 'cuda' and not check.gpus:
        raise PhaseError(f'no GPU visible: {what} would run on CPU processes, which says nothing about GPUs')


def phase_distributed(check: Check) -> Phase:
    from .data.sample_images import write_photo_folder
    from .utils.dist import free_port_pair
    _require_gpus(check, 'tools/dist_train.sh')
    processes = check.gpus or 2  # two gloo processes on a CPU
    photos = os.path.join(check.out, 'data', 'pretrain_photos')
    write_photo_folder(photos, max(8, 2 * processes * 2), max_side=96)
    work = os.path.join(check.out, 'distributed')
    env = {'PORT': str(free_port_pair())}
    text = check.run_tool(['tools/dist_train.sh', 'configs/r2o_tiny_cpu.py', str(processes), '--work-dir', work,
                           '--cfg-options', f'train_dataloader.dataset.data_root={photos}',
                           'train_cfg.max_epochs=1', 'train_dataloader.batch_size=2',
                           'default_hooks.mask_quality.ann_file=None'], 'distributed.log', env=env)
    checkpoint = os.path.join(work, 'epoch_1.pth')
    if not os.path.isfile(checkpoint):
        raise PhaseError(f'no {checkpoint} after the run (log: {check.out}/logs/distributed.log)')
    check.shared['checkpoint'] = checkpoint
    backend = 'NCCL' if check.gpus else 'gloo'
    agree = 'weights agree' if 'weights agree' in text.lower() or processes == 1 else 'weights checked'
    phase = Phase('distributed', figures={'processes': processes, 'backend': backend})
    if processes < 2:
        phase.status, phase.line = 'SKIP', ('one GPU: the launcher ran one process (1 epoch of the tiny config); '
                                            'several GPUs are needed to check NCCL')
    else:
        phase.status, phase.line = 'PASS', (f'{processes} processes ({backend}) through tools/dist_train.sh, '
                                            f'1 epoch of the tiny config; {agree} across ranks')
    return phase


# ------------------------------------------------------------------ phase 5
def phase_transfer(check: Check) -> Phase:
    from .data.synthetic_scenes import write_synthetic_datasets
    from .transfer.small import as_cli, small_transfer_options
    from .utils.dist import free_port_pair
    size = check.size
    _require_gpus(check, 'tools/transfer.sh')
    checkpoint = check.shared.get('checkpoint')
    if not checkpoint:
        raise PhaseError('no pretrained checkpoint: phase distributed did not produce one')
    roots = write_synthetic_datasets(os.path.join(check.out, 'data', 'scenes'), num_train=8, num_val=4,
                                     size=(96, 128), layouts=('voc', 'coco'))
    gpus = max(check.gpus, 1)
    env = {'WORK_DIR': os.path.join(check.out, 'transfer'), 'PORT': str(free_port_pair())}
    results = {}
    for task, root in (('voc', roots['voc']), ('coco_1x', roots['coco'])):
        options = small_transfer_options(task, root, iterations=size['transfer_iters'], batch=2,
                                         image=size['transfer_image'])
        check.run_tool(['tools/transfer.sh', checkpoint, str(gpus), task], f'transfer_{task}.log',
                       env=dict(env, CFG_OPTIONS=' '.join(as_cli(options))))
        log = open(os.path.join(env['WORK_DIR'], task, 'transfer.log')).read()
        if 'backbone load check passed' not in log:
            raise PhaseError(f'{task}: the backbone load check did not pass (log: {env["WORK_DIR"]}/{task})')
        metrics = json.load(open(os.path.join(env['WORK_DIR'], task, 'metrics.json')))
        if not metrics.get('finished'):
            raise PhaseError(f'{task}: metrics.json does not say finished')
        results[task] = {k: round(v, 2) for k, v in metrics['metrics'].items() if isinstance(v, (int, float))}
    phase = Phase('transfer', figures=results)
    phase.status, phase.line = 'PASS', (f"FCN (VOC layout) and Mask R-CNN (COCO layout), {size['transfer_iters']} "
                                        f"iteration{'s' if size['transfer_iters'] != 1 else ''} each on {gpus} "
                                        'process(es) through tools/transfer.sh; '
                                        'backbone load check passed; metrics written')
    return phase


# ------------------------------------------------------------------ phase 6
def phase_learning(check: Check) -> Phase:
    """The demo's learning size on this device (r2o_mm.results.learning): R2O
    and BYOL over as many pretraining seeds as the budget left allows (up to
    3), k-NN top-1 on the shape set and mBO before training and every few
    epochs, the frozen probe at the end; random inits as the baseline."""
    from .evaluation.encoder import load_encoder
    from .evaluation.linear_probe import linear_probe
    from .models.networks import ResNetEncoder
    from .results.learning import (LEARNING_K_OPTIONS, LEARNING_OPTIONS, knn_monitor_options, learning_curves,
                                   learning_record, run_record, verdict_lines, write_learning_data)
    size, device = check.size, check.device
    data = write_learning_data(os.path.join(check.out, 'data', 'learning'), size['learning'])
    images, batch = size['learning']['scenes'], size['pretrain_batch']
    # Seeds and epochs from the measured step rate: the pretraining runs share 75% of what is left, the probes
    # the rest. Three seeds per method when each run still gets min_epochs, else fewer.
    rate = check.shared.get('r2o_images_per_s') or 10.0
    seconds = max(check.left(), 0) * 0.75
    affordable = int(seconds * rate * 0.5 / (2 * images * size['min_epochs']))
    seeds = max(size['min_seeds'], min(size['max_seeds'], affordable))
    epochs = int(min(size['max_epochs'], max(1, seconds * rate * 0.5 / (2 * seeds * images))))
    every = max(1, epochs // 5)
    quality = os.path.join(data['coco'], 'annotations', 'instances_val2017.json')
    steps_per_epoch = -(-images // batch)
    runs, encoders = {}, {}
    for method, extra in (('R2O', []), ('BYOL', ['model.mask_source=whole_image',
                                                 'custom_hooks.1.couple_to_clusters=False'])):
        for seed in range(seeds):
            work = os.path.join(check.out, 'learning', f'{method.lower()}_seed{seed}')
            check.run_tool([check.python, 'tools/train.py', 'configs/r2o_tiny_cpu.py', '--work-dir', work,
                            '--cfg-options', f"train_dataloader.dataset.data_root={data['pretrain']}",
                            f'train_cfg.max_epochs={epochs}', f'train_dataloader.batch_size={batch}',
                            f"train_dataloader.num_workers={min(8, os.cpu_count() or 1) if check.gpus else 0}",
                            f'default_hooks.checkpoint.interval={epochs}', 'default_hooks.logger.interval=50',
                            f'randomness.seed={seed}', f'model.kmeans_seed={seed}',
                            'custom_hooks.3.interval=100000', *LEARNING_OPTIONS, *LEARNING_K_OPTIONS,
                            f"train_dataloader.dataset.pipeline.1.size={size['pretrain_view']}",
                            'train_dataloader.dataset.pipeline.2.size=128', 'default_hooks.mask_quality.size=128',
                            f'default_hooks.mask_quality.ann_file={quality}',
                            f"default_hooks.mask_quality.image_dir={os.path.join(data['coco'], 'val2017')}",
                            f'default_hooks.mask_quality.interval={every}',
                            'default_hooks.mask_quality.reference_ks=[8,4]', 'default_hooks.mask_quality.max_images=32',
                            *knn_monitor_options(data['knn'], size['learning']['knn_train'],
                                                 size['learning']['knn_val'], every), *extra],
                           f'learning_{method.lower()}_seed{seed}.log')
            encoders[(method, seed)] = load_encoder(os.path.join(work, f'epoch_{epochs}.pth'), device)
            runs.setdefault(method, []).append(work)
    for seed in range(seeds):
        torch.manual_seed(seed)
        encoders[('random init', seed)] = ResNetEncoder(18).to(device)
    probes = {}
    for key, encoder in encoders.items():
        values = [run['mIoU'] for run in linear_probe(encoder, data['voc'], seeds=range(1), size=96,
                                                      epochs=size['probe_epochs'])]
        probes[key] = {'mean': values[0], 'runs': values}
    record = learning_record(
        {m: [run_record(work, seed, steps_per_epoch, probes[(m, seed)]) for seed, work in enumerate(works)]
         for m, works in runs.items()},
        {seed: probes[('random init', seed)] for seed in range(seeds)},
        {'device': str(device), 'steps_per_epoch': steps_per_epoch,
         'options': [*LEARNING_OPTIONS, *LEARNING_K_OPTIONS],
         'title': f'gpu_check: {epochs} epochs of {steps_per_epoch} steps, batch {batch}, {seeds} pretraining '
                  'seed(s) per method'})
    with open(os.path.join(check.out, 'learning.json'), 'w') as handle:
        json.dump(record, handle, indent=1)
    learning_curves(record, os.path.join(check.out, 'learning_curves.png'))
    verdicts = {f"{v['question']}: {v['measure']}: {v['comparison']}":
                f"{v['difference']:+.2f} [{v['ci_low']:+.2f}, {v['ci_high']:+.2f}]: {v['verdict']}; {v['varied']}"
                for v in record['verdicts']}
    figures = {'epochs': epochs, 'images': images, 'pretraining_seeds': seeds, 'verdicts': verdicts,
               'learning_json': os.path.join(check.out, 'learning.json'), 'summary': verdict_lines(record['verdicts'])}
    phase = Phase('learning', figures=figures)
    phase.status = 'PASS'
    knn = next((v for v in record['verdicts'] if v['comparison'] == 'R2O - random init'
                and v['measure'] == 'k-NN top-1'), None)
    rise = next((v for v in record['verdicts'] if v['question'] == 'b'), None)
    phase.line = (f'{seeds} pretraining seed(s) per method, {epochs} epoch(s) of {images} generated images; '
                  + (f"k-NN top-1 R2O - random init {knn['difference']:+.1f} ({knn['verdict']})" if knn else 'no k-NN')
                  + (f"; R2O mBO K=4 last - first {rise['difference']:+.1f} ({rise['verdict']})" if rise else ''))
    return phase


# ------------------------------------------------------------------ report
def write_reports(check: Check, verdict: str) -> dict:
    from .utils.machine import machine_fingerprint
    record = {'verdict': verdict, 'device': str(check.device), 'quick': check.args.quick,
              'minutes_budget': check.args.minutes, 'minutes_used': round((time.time() - check.start) / 60, 2),
              'machine': machine_fingerprint(), 'tolerances': TOLERANCES, 'goals': GOALS,
              'phases': [asdict(phase) for phase in check.phases]}
    with open(os.path.join(check.out, 'report.json'), 'w') as handle:
        json.dump(record, handle, indent=1, default=str)
    with open(os.path.join(check.out, 'report.md'), 'w') as handle:
        handle.write(markdown_report(record))
    return record


def markdown_report(record: dict) -> str:
    lines = [f"Machine: {record['machine']['name']}; device {record['device']}"
             f"{' (quick sizes)' if record['quick'] else ''}; {record['minutes_used']} of "
             f"{record['minutes_budget']} minutes. Written by `tools/gpu_check.sh`.", '',
             f"**{record['verdict']}**", '', '| phase | result | what was measured | seconds |',
             '| --- | --- | --- | --- |']
    for phase in record['phases']:
        lines.append(f"| {phase['name']} | {phase['status']} | {phase['line']} | {phase['seconds']:.0f} |")
    for phase in record['phases']:
        table = phase['figures'].get('step_table') if phase['name'] == 'speed' else None
        if table:
            lines += ['', '### Training steps (R2O at K=128; BYOL the same code with one mask)', '',
                      '| batch | precision | method | ms | images/s | peak GB | R2O/BYOL |', '| --- ' * 7 + '|']
            for row in table:
                lines.append(f"| {row['batch']} | {row['precision']} | {row['method']} | {row['ms']} | "
                             f"{row['images_per_s']} | {row['peak_GB'] if row['peak_GB'] is not None else 'n/a'} | "
                             f"{row.get('R2O/BYOL', '')} |")
            goals = phase['figures'].get('goals')
            lines += ['', 'Goals: ' + ('; '.join(goals) if isinstance(goals, list) else goals)]
    return '\n'.join(lines) + '\n'


def write_benchmarks_section(record: dict, path: str):
    sys.path.insert(0, os.path.join(ROOT, 'tools'))
    from benchmark import replace_section
    header = f"GPU check: {record['machine']['name']}"
    replace_section(path, header, markdown_report(record))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--minutes', type=float, default=10.0, help='time budget (default 10)')
    parser.add_argument('--device', default='cuda', help="'cuda' (default) or 'cpu' for the rehearsal")
    parser.add_argument('--quick', action='store_true', help='tiny sizes (the rehearsal)')
    parser.add_argument('--out', default=os.path.join(ROOT, 'work_dirs', 'gpu_check', time.strftime('%Y%m%d_%H%M%S')))
    parser.add_argument('--phases', nargs='+', choices=PHASES, default=list(PHASES))
    parser.add_argument('--keep-going', action='store_true',
                        help='run the other phases after a failed environment phase (by default the check '
                        'stops there: without a working GPU the rest measures nothing)')
    parser.add_argument('--benchmarks', nargs='?', const=os.path.join(ROOT, 'results', 'benchmarks.md'),
                        help='also write the GPU section of this file (default results/benchmarks.md)')
    args = parser.parse_args(argv)
    if args.device not in ('cuda', 'cpu'):
        parser.error(f"--device: 'cuda' or 'cpu', not {args.device!r}")
    check = Check(args)
    import logging
    logging.getLogger('mmengine').setLevel(logging.WARNING)  # init_weights' per-parameter lines
    print(f"gpu_check: device {args.device}{', quick sizes' if args.quick else ''}, budget {args.minutes:g} min, "
          f'report in {check.out}', flush=True)
    for name in args.phases:
        began = time.time()
        try:
            phase = globals()[f'phase_{name}'](check)
        except PhaseError as error:
            phase = Phase(name, 'FAIL', str(error))
        except Exception as error:  # one line here, the traceback in the log
            os.makedirs(os.path.join(check.out, 'logs'), exist_ok=True)
            with open(os.path.join(check.out, 'logs', f'{name}.traceback'), 'w') as handle:
                traceback.print_exc(file=handle)
            phase = Phase(name, 'FAIL', f'{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ""}'
                                         f' (traceback: logs/{name}.traceback)')
        phase.seconds = time.time() - began
        check.phases.append(phase)
        print(f'[{phase.status}] {name} ({phase.seconds:.0f} s): {phase.line}', flush=True)
        rest = args.phases[args.phases.index(name) + 1:]
        if name == 'environment' and phase.status == 'FAIL' and rest and not args.keep_going:
            print(f'gpu_check: stopped after the environment phase ({len(rest)} phase(s) not run; '
                  '--keep-going runs them anyway)', flush=True)
            return 1
    failed = [p.name for p in check.phases if p.status == 'FAIL']
    skipped = [p.name for p in check.phases if p.status == 'SKIP']
    used = (time.time() - check.start) / 60
    verdict = (f"{'FAIL: ' + ', '.join(failed) if failed else 'PASS'}: {len(check.phases) - len(failed) - len(skipped)} "
               f"passed, {len(failed)} failed, {len(skipped)} skipped{' (' + ', '.join(skipped) + ')' if skipped else ''}"
               f" in {used:.1f} of {args.minutes:g} min on {args.device}")
    record = write_reports(check, verdict)
    if args.benchmarks:
        write_benchmarks_section(record, args.benchmarks)
    print(f'gpu_check: {verdict}. Report: {check.out}/report.md', flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
