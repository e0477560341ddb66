"""The jobs behind each paper table, what each costs, and whether it is done.

A target (``table1`` ... ``table4``, ``linear``, ``all``, and ``tiny``, the
test-size chain) is a graph of jobs: pretrainings, the export (the transfer
pre-flight: every task's config and dataset checked, the encoder exported
once), transfers with their fine-tuning seeds, evaluations (CUB, k-NN) and
the final collection. Every job runs one of the existing tools; this module
only names them, their inputs and outputs.

Outputs live under one root (default ``work_dirs/reproduce``) shared by all
targets, so a pretraining that two tables need is one job:

    pretrain/<config>/                 the mmengine work dir (epoch_<E>.pth)
    transfer/<config>/backbone.pth     the export of its final checkpoint
    transfer/<config>/seed<S>/<task>/  one fine-tuning run (metrics.json)
    evals/<config>/<cub|knn>/          CUB and k-NN metrics
    results/<target>/                  the collected tables
    jobs/                              each job's script, log and events

A job is done when its output exists and belongs to its inputs: a
pretraining when its final checkpoint exists; an export when backbone.pth's
source record names the checkpoint's sha256; a transfer when its
metrics.json names the checkpoint's sha256 and the config fingerprint of
this run (task config with its options, as ``tools/transfer_run.py``
computes it); an evaluation when its metrics are newer than the checkpoint;
the collection when its tables are newer than every result it reads.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
from dataclasses import dataclass, field

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TARGETS = ('table1', 'table2', 'table3', 'table4', 'linear', 'all', 'tiny')
TABLE4 = ('r2o_imagenet100_full', 'r2o_imagenet100_constant_k', 'r2o_imagenet100_no_mask_prediction',
          'r2o_imagenet100_no_slic_prior', 'r2o_imagenet100_byol')
# target -> [(pretraining config stem, [evaluations])]
TABLES = {
    'table1': [('r2o_imagenet_300e', ['coco_1x', 'coco_2x', 'voc', 'cityscapes'])],
    'table2': [('r2o_coco', ['voc', 'cityscapes'])],
    'table3': [('r2o_imagenet_300e', ['cub'])],
    'table4': [(config, ['voc', 'knn']) for config in TABLE4],
    'linear': [('r2o_imagenet_300e', ['imagenet_linear', 'imagenet_semi_1pct', 'imagenet_semi_10pct'])],
    'tiny': [('r2o_tiny_cpu', ['voc'])],
}
EVALUATIONS = ('cub', 'knn')  # no fine-tuning: deterministic, one job whatever --seeds says

# Images each pretraining data set holds (docs/method.md; the tiny target's folder is counted).
PRETRAIN_DATA = {'r2o_imagenet_300e': ('ImageNet-1k', 1281167), 'r2o_coco': ('COCO train2017', 118287),
                 **{config: ('ImageNet-100', 126689) for config in TABLE4}}


@dataclass(frozen=True)
class Work:
    """What one downstream run computes: ``images`` through the network in
    all, at ``side`` px, ``units`` ResNet-50 forward-equivalents per image
    at that side (forward 1, backward 2), on the protocol's ``gpus``."""
    images: int
    side: int
    units: int
    gpus: int
    what: str


# From the transfer configs (tests/tools/test_reproduce.py checks them against configs/transfer/).
WORK = {
    'coco_1x': Work(24000 * 64, 1024, 3, 8, '24k iterations x batch 64, 1024 px'),
    'coco_2x': Work(48000 * 64, 1024, 3, 8, '48k iterations x batch 64, 1024 px'),
    'voc': Work(30000 * 16, 513, 3, 2, '30k iterations x batch 16, 513 px'),
    'cityscapes': Work(160 * 2975, 769, 3, 4, '160 epochs x 2,975 images, 769 px'),
    'imagenet_linear': Work(90 * 1281167, 224, 1, 8, '90 epochs x 1,281,167 images, frozen encoder'),
    'imagenet_semi_1pct': Work(60 * 12811, 224, 3, 8, '60 epochs x 12,811 images'),
    'imagenet_semi_10pct': Work(30 * 128116, 224, 3, 8, '30 epochs x 128,116 images'),
    'knn': Work(126689 + 5000, 224, 1, 1, 'features of 126,689 + 5,000 images'),
    'cub': Work(5794, 224, 1, 1, 'features of 5,794 test images'),
}
# The paper: 300 epochs of ImageNet-1k on 128 GPUs took about 30 hours.
PAPER_GPUS, PAPER_HOURS, PAPER_EPOCHS = 128, 30, 300
PAPER_RATE = PRETRAIN_DATA['r2o_imagenet_300e'][1] * PAPER_EPOCHS / (PAPER_GPUS * PAPER_HOURS * 3600)
# A pretraining image costs two views x (online forward + backward, target forward) = 8 units at 224 px.
PRETRAIN_UNITS = 8


@dataclass
class Rate:
    """R2O pretraining images per second per GPU, and where the figure comes from."""
    images_per_s: float
    source: str


def paper_rate() -> Rate:
    return Rate(PAPER_RATE, f'the paper: {PAPER_EPOCHS} epochs of ImageNet-1k on {PAPER_GPUS} GPUs in about '
                            f'{PAPER_HOURS} h = {PAPER_RATE:.1f} images/s per GPU')


def gpu_check_rate(path: str) -> Rate | None:
    """The R2O step rate a ``tools/gpu_check.sh`` record (report.json) measured
    on a GPU (K=128, the schedule's dearest step: an upper bound on the hours);
    None for a CPU rehearsal or a record without the speed phase."""
    try:
        with open(path) as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    if not str(record.get('device', '')).startswith('cuda'):
        return None
    speed = next((p for p in record.get('phases', []) if p.get('name') == 'speed'), None)
    rate = (speed or {}).get('figures', {}).get('r2o_images_per_s')
    if not rate:
        return None
    machine = (record.get('machine') or {}).get('name', 'a GPU node')
    return Rate(float(rate), f'tools/gpu_check.sh on {machine} ({path}): R2O at K=128, {rate:.1f} images/s per GPU')


def benchmarks_rate(path: str = osp.join(ROOT, 'results', 'benchmarks.md')) -> Rate | None:
    """R2O's step rate over the released K schedule from the first GPU
    section (``## cuda: ...``) of results/benchmarks.md that ``tools/benchmark.py``
    wrote at ResNet-50 and 224 px: batch / (BYOL's step x R2O's schedule-average
    ratio with compaction). None when there is no such section."""
    import re
    try:
        text = open(path).read()
    except OSError:
        return None
    for section in text.split('\n## ')[1:]:
        if not section.startswith('cuda:'):
            continue
        setting = re.search(r'ResNet-50, batch (\d+), input 224\b', section)
        byol = re.search(r'BYOL \(same code, one whole-image mask\): ([\d.]+) ms per step', section)
        schedule = re.search(r'\| released schedule[^|]*\|[^|]*\|[^|]*\|[^|]*\|[^|]*\| ([\d.]+)x', section)
        if setting and byol and schedule:
            batch, ms, ratio = int(setting.group(1)), float(byol.group(1)), float(schedule.group(1))
            rate = batch * 1000 / (ms * ratio)
            machine = section.splitlines()[0][len('cuda: '):]
            return Rate(rate, f'results/benchmarks.md, {machine}: batch {batch} per GPU, BYOL {ms:g} ms x R2O '
                              f'{ratio:.2f} over the released K schedule = {rate:.1f} images/s per GPU')
    return None


def newest_gpu_check(root: str = osp.join(ROOT, 'work_dirs', 'gpu_check')) -> Rate | None:
    for path in sorted(glob.glob(osp.join(root, '*', 'report.json')), reverse=True):
        rate = gpu_check_rate(path)
        if rate:
            return rate
    return None


def measured_transfer_rate(root: str, task: str) -> Rate | None:
    """images/s per GPU of a finished run of ``task`` on GPUs under ``root``
    (its metrics.json cost record), converted to pretraining images/s by
    the same FLOP ratio the estimate uses; None when there is none."""
    for path in sorted(glob.glob(osp.join(root, 'transfer', '*', 'seed*', task, 'metrics.json'))):
        try:
            with open(path) as handle:
                cost = json.load(handle).get('cost') or {}
        except (OSError, ValueError):
            continue
        if cost.get('unit') == 'GPU-hours' and cost.get('images_per_second') and cost.get('world_size'):
            per_gpu = cost['images_per_second'] / cost['world_size']
            return Rate(per_gpu * _units(WORK[task]) / PRETRAIN_UNITS,
                        f'measured: {path} ({per_gpu:.1f} images/s per GPU on {cost.get("device")})')
    return None


def _units(work: Work) -> float:
    return work.units * (work.side / 224) ** 2


@dataclass
class Job:
    name: str
    kind: str                 # data | pretrain | export | transfer | eval | collect
    title: str                # what it does, in words
    local: list               # argv from the repository root, one machine
    slurm: list               # argv inside its sbatch allocation
    env: dict = field(default_factory=dict)
    gpus: int = 0             # per node; 0: a CPU job
    nodes: int = 1
    inputs: tuple = ()        # names of the jobs it needs
    output: str = ''          # what exists when it is done
    checkpoint: str = ''      # the checkpoint it reads
    requeue: bool = False     # a pretraining: requeued after a preemption, resumes itself
    gpu_hours: float = 0.0
    work: str = ''            # what the estimate counts
    source: str = ''          # the step rate it divides by, and where that comes from
    expected: dict = field(default_factory=dict)  # what done() compares


@dataclass
class Graph:
    target: str
    root: str
    jobs: list
    seeds: int
    results: str

    def job(self, name: str) -> Job:
        return next(job for job in self.jobs if job.name == name)


def _python() -> str:
    import sys
    return sys.executable


def pretraining_job(config: str, root: str, gpus_per_node: int, rate: Rate, options: list | None = None,
                    epochs: int | None = None, images: int | None = None, inputs=()) -> Job:
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, 'configs', f'{config}.py'))
    epochs = epochs or cfg.train_cfg.max_epochs
    work = osp.join(root, 'pretrain', config)
    released = (cfg.get('released_recipe') or {}).get('world_size') or 8
    if gpus_per_node:
        nodes = max(1, -(-released // gpus_per_node))
        gpus, tasks = gpus_per_node, nodes * gpus_per_node
    else:
        nodes, gpus, tasks = 1, 0, 1
    train_args = ['--work-dir', work, *(['--cfg-options', *options] if options else [])]
    config_path = osp.join('configs', f'{config}.py')
    # One machine: torchrun over its GPUs (the lr follows the smaller global batch, as the config says).
    if gpus > 1:
        local = ['tools/dist_train.sh', config_path, str(gpus), *train_args, '--resume']
    else:
        local = [_python(), 'tools/train.py', config_path, *train_args, '--resume']
    data, count = PRETRAIN_DATA.get(config, ('a folder', images or 0))
    hours = count * epochs / rate.images_per_s / 3600 if gpus else 0.0
    return Job(name=f'pretrain-{config}', kind='pretrain', title=f'pretrain {config}: {epochs} epochs of {data}',
               local=local, slurm=['tools/slurm_train.sh', '$SLURM_JOB_PARTITION', f'pretrain-{config}', config_path,
                                   str(tasks), *train_args],
               env={'GPUS_PER_NODE': str(gpus)}, gpus=gpus, nodes=nodes, inputs=tuple(inputs),
               output=osp.join(work, f'epoch_{epochs}.pth'), requeue=True, gpu_hours=hours,
               work=f'{epochs} epochs x {count:,} images, {PRETRAIN_UNITS} units per image',
               source=rate.source if gpus else 'CPU job')


def _gpus(protocol: int, gpus_per_node: int) -> int:
    return min(protocol, gpus_per_node) if gpus_per_node else 0


def downstream_jobs(config: str, checkpoint: str, evaluations: list, root: str, seeds: int, gpus_per_node: int,
                    rate: Rate, inputs: tuple, options: dict | None = None) -> list:
    """The export, the transfers (``seeds`` fine-tuning seeds each) and the
    evaluations of one checkpoint."""
    from ..transfer.small import as_cli
    out = osp.join(root, 'transfer', config)
    backbone = osp.join(out, 'backbone.pth')
    transfers = [task for task in evaluations if task not in EVALUATIONS]
    jobs = []
    if transfers:
        # Its own work dir, outside what the collection reads: a refused task leaves a FAILED note there.
        checks = osp.join(root, 'jobs', 'preflight', config)
        preflight = [_python(), '-m', 'r2o_mm.transfer.preflight', checkpoint, '--gpus', '1', '--work-dir', checks,
                     '--backbone', backbone, '--tasks', *transfers,
                     *(['--cfg-options', *as_cli(options)] if options else [])]
        jobs.append(Job(name=f'export-{config}', kind='export', title=f'pre-flight of {", ".join(transfers)} and '
                        f'export of the encoder', local=preflight, slurm=preflight, inputs=inputs, output=backbone,
                        checkpoint=checkpoint, source='CPU job'))
    for task in evaluations:
        work = WORK[task]
        gpus = _gpus(work.gpus, gpus_per_node)
        task_rate = measured_transfer_rate(root, task) or rate
        hours = work.images * _units(work) / PRETRAIN_UNITS / task_rate.images_per_s / 3600 if gpus else 0.0
        source = task_rate.source if gpus else 'CPU job'
        what = f'{work.what}, {_units(work):.1f} units per image'
        if task in EVALUATIONS:
            folder = osp.join(root, 'evals', config, task)
            if task == 'knn':
                argv = [_python(), 'tools/eval_knn.py', checkpoint, '--train', 'data/imagenet/train', '--val',
                        'data/imagenet/val', '--classes', 'data/imagenet/imagenet100.txt', '--out', folder]
            else:
                argv = [_python(), 'tools/eval_cub.py', checkpoint, '--data', 'data/CUB_200_2011', '--k', '5',
                        '--out', folder]
            jobs.append(Job(name=f'{task}-{config}', kind='eval', title=f'{task} of {config}', local=argv,
                            slurm=argv, gpus=gpus, inputs=inputs, output=osp.join(folder, f'{task}_metrics.json'),
                            checkpoint=checkpoint, gpu_hours=hours, work=what, source=source))
            continue
        for seed in range(seeds):
            task_out = osp.join(out, f'seed{seed}')
            task_options = dict(options or {}, **{'randomness.seed': seed})
            env = {'WORK_DIR': task_out, 'BACKBONE': backbone, 'CFG_OPTIONS': ' '.join(as_cli(task_options)),
                   'GPUS_PER_NODE': str(gpus)}
            jobs.append(Job(name=f'{task}-{config}-seed{seed}', kind='transfer',
                            title=f'{task} from {config}, fine-tuning seed {seed}',
                            local=['tools/transfer.sh', checkpoint, str(max(gpus, 1)), task],
                            slurm=['tools/slurm_transfer.sh', '$SLURM_JOB_PARTITION', checkpoint, str(max(gpus, 1)),
                                   task], env=env, gpus=gpus, inputs=(f'export-{config}',),
                            output=osp.join(task_out, task, 'metrics.json'), checkpoint=checkpoint,
                            gpu_hours=hours, work=what, source=source, expected={'task': task, 'options': task_options,
                                                                      'backbone': backbone}))
    return jobs


def tiny_data(root: str) -> dict:
    folder = osp.join(root, 'data', 'tiny')
    return {'folder': folder, 'photos': osp.join(folder, 'photos'),
            'voc': osp.join(folder, 'scenes', 'VOCdevkit', 'VOC2012'), 'ready': osp.join(folder, 'READY')}


# The tiny target: 16 photographs, 2 epochs of 4 steps, then a 2-iteration VOC-layout transfer.
TINY_EPOCHS = 2


def tiny_options(root: str) -> tuple[list, dict]:
    from ..transfer.small import small_transfer_options
    data = tiny_data(root)
    pretrain = [f'train_dataloader.dataset.data_root={data["photos"]}', f'train_cfg.max_epochs={TINY_EPOCHS}',
                'default_hooks.checkpoint.interval=1', 'default_hooks.logger.interval=1']
    return pretrain, small_transfer_options('voc', data['voc'], iterations=2, batch=2)


def build(target: str, root: str = 'work_dirs/reproduce', seeds: int = 1, gpus_per_node: int = 8,
          checkpoint: str | None = None, rate: Rate | None = None) -> Graph:
    """The job graph of ``target`` (see the module docstring)."""
    if target not in TARGETS:
        raise ValueError(f'unknown target {target}; choose from {", ".join(TARGETS)}')
    root = osp.abspath(root)
    if target == 'tiny':
        gpus_per_node = 0  # the test-size chain: CPU jobs only
    rate = rate or benchmarks_rate() or newest_gpu_check() or paper_rate()
    tables = [t for t in TABLES if t != 'tiny'] if target == 'all' else [target]
    plan: dict = {}  # config -> evaluations, in table order
    for table in tables:
        for config, evaluations in TABLES[table]:
            plan.setdefault(config, [])
            plan[config] += [e for e in evaluations if e not in plan[config]]
    if checkpoint and len(plan) > 1:
        raise ValueError(f'--checkpoint gives one encoder; {target} needs {len(plan)} pretrainings '
                         f'({", ".join(plan)})')
    jobs = []
    pretrain_options, transfer_options = (tiny_options(root) if target == 'tiny' else (None, None))
    if target == 'tiny':
        data = tiny_data(root)
        write = [_python(), '-m', 'r2o_mm.reproduce.graph', 'tiny-data', root]
        jobs.append(Job(name='data-tiny', kind='data', title='generate the tiny photographs and VOC-layout scenes',
                        local=write, slurm=write, output=data['ready'], source='CPU job'))
    for config, evaluations in plan.items():
        if checkpoint:
            from ..utils.checkpoint import file_sha256
            ckpt = osp.abspath(checkpoint)
            name = f'{osp.splitext(osp.basename(ckpt))[0]}-{file_sha256(ckpt)[:8]}'
            jobs += downstream_jobs(name, ckpt, evaluations, root, seeds, gpus_per_node, rate, ())
            continue
        inputs = ('data-tiny',) if target == 'tiny' else ()
        pretrain = pretraining_job(config, root, gpus_per_node, rate, pretrain_options,
                                   epochs=TINY_EPOCHS if target == 'tiny' else None, inputs=inputs)
        jobs.append(pretrain)
        jobs += downstream_jobs(config, osp.abspath(pretrain.output), evaluations, root, seeds, gpus_per_node,
                                rate, (pretrain.name,), transfer_options)
    results = osp.join(root, 'results', target)
    # What the collection reads: the pretraining work dirs, transfer/<config>/ and evals/<config>/.
    folders = list(dict.fromkeys(osp.dirname(j.output) if j.kind != 'eval' else osp.dirname(osp.dirname(j.output))
                                 for j in jobs if j.kind in ('pretrain', 'export', 'eval')))
    collect = [_python(), 'tools/collect_results.py', *folders, '--out', results, '--quiet']
    jobs.append(Job(name=f'collect-{target}', kind='collect', title=f'collect the tables of {target}',
                    local=collect, slurm=collect, inputs=tuple(j.name for j in jobs if j.kind in ('transfer', 'eval')),
                    output=osp.join(results, 'issues.md'), source='CPU job'))
    return Graph(target, root, jobs, seeds, results)


# ------------------------------------------------------------------ done-state
_SHA: dict = {}


def checkpoint_sha256(path: str) -> str | None:
    """sha256 of a file, cached by (path, size, mtime)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _SHA:
        from ..utils.checkpoint import file_sha256
        _SHA[key] = file_sha256(path)
    return _SHA[key]


def transfer_fingerprint(job: Job) -> str:
    """The config fingerprint ``tools/transfer_run.py`` records for this job:
    its options parsed the way CFG_OPTIONS reaches it (mmengine's DictAction)."""
    from mmengine.config import DictAction

    from ..transfer.run import prepare_config
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    options = parser.parse_args(['--cfg-options', *job.env['CFG_OPTIONS'].split()]).cfg_options
    _, info = prepare_config(job.expected['task'], job.expected['backbone'], osp.dirname(job.output), options,
                             check_backbone=False, check_data=False)
    return info['config_sha256']


def done(job: Job, graph: Graph) -> str | None:
    """Why the job counts as done (one phrase), or None."""
    if not osp.isfile(job.output):
        return None
    if job.kind in ('data', 'pretrain'):
        return job.output
    if job.kind == 'export':
        from ..transfer.export import read_source_record
        record = read_source_record(job.output) or {}
        sha = checkpoint_sha256(job.checkpoint)
        return f'export of sha256 {sha[:12]}...' if sha and record.get('source_sha256') == sha else None
    if job.kind == 'transfer':
        try:
            with open(job.output) as handle:
                metrics = json.load(handle)
        except (OSError, ValueError):
            return None
        sha = checkpoint_sha256(job.checkpoint)
        if not metrics.get('finished') or metrics.get('checkpoint_sha256') != sha:
            return None
        if metrics.get('config_sha256') != transfer_fingerprint(job):
            return None
        return job.output
    if job.kind == 'eval':
        ckpt = job.checkpoint
        return job.output if osp.isfile(ckpt) and os.stat(job.output).st_mtime >= os.stat(ckpt).st_mtime else None
    if job.kind == 'collect':
        written = os.stat(job.output).st_mtime
        inputs = [graph.job(name).output for name in job.inputs]
        if all(osp.isfile(p) and os.stat(p).st_mtime <= written for p in inputs):
            return graph.results
        return None
    raise ValueError(job.kind)


def in_the_way(job: Job) -> str | None:
    """For a transfer that :func:`done` found not done (callers have asked
    it already): a result in its work dir, from another checkpoint or
    config, on which its pre-flight will stop."""
    if job.kind != 'transfer' or not osp.isfile(job.output):
        return None
    return (f'{osp.dirname(job.output)} holds a result of another checkpoint or config: the pre-flight of '
            f'{job.name} will stop on it (remove the folder, or choose another --work-dir)')


def write_tiny_data(root: str):
    """The tiny target's data: 16 photographs, VOC-layout scenes."""
    from ..data.sample_images import write_photo_folder
    from ..data.synthetic_scenes import write_synthetic_datasets
    data = tiny_data(root)
    write_photo_folder(data['photos'], num_images=16, max_side=96)
    write_synthetic_datasets(osp.join(data['folder'], 'scenes'), num_train=4, num_val=2, size=(64, 80),
                             layouts=('voc',))
    with open(data['ready'], 'w') as handle:
        handle.write('written by python -m r2o_mm.reproduce.graph tiny-data\n')
    print(f'tiny data under {data["folder"]}')


if __name__ == '__main__':
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == 'tiny-data':
        write_tiny_data(sys.argv[2])
    else:
        sys.exit('usage: python -m r2o_mm.reproduce.graph tiny-data ROOT')
