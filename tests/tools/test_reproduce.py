"""tools/reproduce.py: the plans of the paper's tables (jobs, GPUs, GPU-hours
recomputed here from the paper's figures and the transfer configs), and the
tiny target run for real: on the private Slurm cluster (preempted once,
a transfer that fails and is retried alone, a second run that submits
nothing) and on this machine (a failure does not stop the other branch)."""
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from r2o_mm.reproduce import graph as graphs
from r2o_mm.reproduce import launch
from r2o_mm.utils import slurm_cluster

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREEMPTED = re.compile(r'preempted by (SIG\w+): saved \S+ at iteration (\d+)')
# The paper's statement: 300 epochs of ImageNet-1k (1,281,167 images) on 128 GPUs in about 30 hours.
PAPER_RATE = 1281167 * 300 / (128 * 30 * 3600)


def reproduce(*argv, env=None, check=True):
    result = subprocess.run([os.path.join(ROOT, 'tools', 'reproduce.py'), *argv], cwd=ROOT, capture_output=True,
                            text=True, timeout=900, env=dict(env or os.environ, R2O_SKIP_SETUP='1',
                                                             PYTHON=sys.executable, OMP_NUM_THREADS='1'))
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def rows(plan: str) -> dict:
    """{job name: (needs, GPUs x nodes, GPU-hours, output)} from the plan's table."""
    found = {}
    for line in plan.splitlines():
        cells = re.split(r'\s{2,}', line.strip())
        if len(cells) == 6 and cells[0].isdigit():
            found[cells[1]] = tuple(cells[2:])
    return found


def gpu_hours(cell: str) -> float:
    return 0.0 if cell == '-' else float(cell.split()[0].replace(',', ''))


def plan_of(tool_main, *argv) -> str:
    """tools/reproduce.py plan ... in this process (R2O_SKIP_SETUP: the shell header is not run)."""
    code, lines = tool_main('reproduce.py', ['plan', *argv])
    assert code == 0, lines
    return '\n'.join(lines)


def test_plan_table1_recomputed_from_the_paper_and_the_configs(tool_main, tmp_path):
    plan = plan_of(tool_main, 'table1', '--seeds', '2', '--work-dir', str(tmp_path))
    table = rows(plan)
    assert list(table) == ['pretrain-r2o_imagenet_300e', 'export-r2o_imagenet_300e',
                           *[f'{task}-r2o_imagenet_300e-seed{s}' for task in ('coco_1x', 'coco_2x', 'voc', 'cityscapes')
                             for s in (0, 1)], 'collect-table1']
    # The released recipe: 128 GPUs = 16 nodes x 8; 300 epochs at the paper's rate = 128 x 30 h.
    assert table['pretrain-r2o_imagenet_300e'][:2] == ('-', '8 x 16')
    assert gpu_hours(table['pretrain-r2o_imagenet_300e'][2]) == pytest.approx(3840.0, abs=0.05)
    # A transfer: its images x (3 passes at its crop / 224 px) over 8 passes per pretraining image.
    expected = {'coco_1x': (24000 * 64, 1024, '8 x 1'), 'coco_2x': (48000 * 64, 1024, '8 x 1'),
                'voc': (30000 * 16, 513, '2 x 1'), 'cityscapes': (160 * 2975, 769, '4 x 1')}
    for task, (images, side, resources) in expected.items():
        for seed in (0, 1):
            needs, gpus, hours, output = table[f'{task}-r2o_imagenet_300e-seed{seed}']
            assert (needs, gpus, output) == ('2', resources, 'to run')
            assert gpu_hours(hours) == pytest.approx(images * 3 * (side / 224) ** 2 / 8 / PAPER_RATE / 3600, abs=0.05)
    assert table['export-r2o_imagenet_300e'][:3] == ('1', 'CPU', '-')
    assert table['collect-table1'][0] == '8 jobs'
    total = re.search(r'total: ([\d,.]+) GPU-hours \(([\d,.]+) pretraining', plan)
    assert float(total.group(2).replace(',', '')) == pytest.approx(3840.0, abs=0.05)
    assert float(total.group(1).replace(',', '')) == pytest.approx(sum(gpu_hours(r[2]) for r in table.values()),
                                                                   abs=0.2)
    assert f'the paper: 300 epochs of ImageNet-1k on 128 GPUs in about 30 h = {PAPER_RATE:.1f} images/s' in plan


def test_plan_table4_has_five_pretrainings_and_checkpoint_needs_one_encoder(tool_main, tmp_path):
    plan = plan_of(tool_main, 'table4', '--work-dir', str(tmp_path))
    table = rows(plan)
    pretrainings = [name for name in table if name.startswith('pretrain-')]
    assert pretrainings == [f'pretrain-{config}' for config in graphs.TABLE4]
    for config in graphs.TABLE4:  # 200 epochs of ImageNet-100 on one node; VOC and k-NN after it
        assert table[f'pretrain-{config}'][1] == '8 x 1'
        assert gpu_hours(table[f'pretrain-{config}'][2]) == pytest.approx(126689 * 200 / PAPER_RATE / 3600, abs=0.05)
        assert f'voc-{config}-seed0' in table and f'knn-{config}' in table
    assert len(table) == 5 * 4 + 1
    code, lines = tool_main('reproduce.py', ['plan', 'table4', '--checkpoint', os.path.join(ROOT, 'README.md'),
                                             '--work-dir', str(tmp_path)])
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith('reproduce.py: --checkpoint gives one encoder; table4 needs 5 pretrainings')


def test_a_gpu_check_record_gives_the_rate_and_a_cpu_rehearsal_does_not(tool_main, tmp_path):
    record = dict(device='cuda:0', machine=dict(name='a test GPU'),
                  phases=[dict(name='speed', figures=dict(r2o_images_per_s=100.0))])
    (tmp_path / 'gpu.json').write_text(json.dumps(record))
    (tmp_path / 'cpu.json').write_text(json.dumps(dict(record, device='cpu')))
    plan = plan_of(tool_main, 'table2', '--gpu-record', str(tmp_path / 'gpu.json'), '--work-dir', str(tmp_path))
    # 800 epochs of COCO train2017 at 100 images/s per GPU.
    assert gpu_hours(rows(plan)['pretrain-r2o_coco'][2]) == pytest.approx(118287 * 800 / 100 / 3600, abs=0.05)
    assert 'tools/gpu_check.sh on a test GPU' in plan
    code, lines = tool_main('reproduce.py', ['plan', 'table2', '--gpu-record', str(tmp_path / 'cpu.json')])
    assert code == 2 and lines == [f'reproduce.py: {tmp_path / "cpu.json"} holds no GPU step rate (a CPU rehearsal, '
                                   'or no speed phase)']


def test_a_gpu_section_of_the_benchmarks_gives_the_schedule_average_rate(tmp_path):
    """The section tools/benchmark.py writes on a GPU (its layout, numbers made up):
    32 images per 250 ms x 1.17 = 109.4 images/s per GPU; CPU sections are not rates of a GPU."""
    cpu = ('## cpu: AMD EPYC, 2 cores\n\nMachine: AMD EPYC. ResNet-50, batch 4, input 224, median of 3 steps.\n\n'
           'BYOL (same code, one whole-image mask): 1126 ms per step.\n\n'
           '| released schedule (mean over epochs 1-300) | | 1.30x | 1.32x | | 1.17x | 1.22x | | 0.96 |\n')
    gpu = ('## cuda: NVIDIA H100 80GB, 16 cores\n\nMachine: NVIDIA H100. ResNet-50, batch 32, input 224, median '
           'of 3 steps after a warm-up.\n\n### 1. Training step, R2O vs BYOL, by K\n\n'
           'BYOL (same code, one whole-image mask): 250 ms per step.\n\n'
           '| K | R2O ms, all rows | ratio | FLOP model | R2O ms, compacted | ratio | FLOP model | rows compacted '
           '| measured / model |\n|---|---|---|---|---|---|---|---|---|\n'
           '| 128 | 360 | 1.44x | 1.45x | 312 | 1.25x | 1.28x | 48% | 0.97 |\n'
           '| released schedule (mean over epochs 1-300) | | 1.30x | 1.32x | | 1.17x | 1.22x | | 0.96 |\n')
    path = tmp_path / 'benchmarks.md'
    path.write_text('# Benchmarks\n\n' + cpu)
    assert graphs.benchmarks_rate(str(path)) is None
    path.write_text('# Benchmarks\n\n' + cpu + '\n' + gpu)
    rate = graphs.benchmarks_rate(str(path))
    assert rate.images_per_s == pytest.approx(32 * 1000 / (250 * 1.17))
    assert rate.source.startswith('results/benchmarks.md, NVIDIA H100 80GB, 16 cores: batch 32 per GPU')
    job = graphs.build('table2', str(tmp_path), rate=rate).job('pretrain-r2o_coco')
    assert job.gpu_hours == pytest.approx(118287 * 800 / rate.images_per_s / 3600)


def test_the_work_of_each_job_is_its_config():
    """The images and crop sizes the estimates count are those of configs/transfer/."""
    from r2o_mm.transfer.run import task_config_path
    from r2o_mm.utils.config import read_config
    for task in ('coco_1x', 'coco_2x', 'voc', 'cityscapes', 'imagenet_semi_1pct', 'imagenet_semi_10pct',
                 'imagenet_linear'):
        cfg = read_config(task_config_path(task))
        work = graphs.WORK[task]
        loop = cfg.train_cfg
        if loop.get('max_iters'):
            assert work.images == loop.max_iters * cfg.reference_batch, task
        else:
            per_epoch = {'cityscapes': 2975, 'imagenet_semi_1pct': 12811, 'imagenet_semi_10pct': 128116,
                         'imagenet_linear': 1281167}[task]
            assert work.images == loop.max_epochs * per_epoch, task
        if cfg.get('crop_size'):
            assert work.side == cfg.crop_size[0], task
    assert graphs.WORK['coco_1x'].side == read_config(task_config_path('coco_1x')).image_size[0]


def test_events_elapsed_restarts_and_the_last_error(tmp_path):
    events = tmp_path / 'job.events'
    # A run preempted (no end line), its requeued run ending with 0; then a resubmission that failed.
    events.write_text('start 100 0 11\nstart 160 1 12\nend 200 0\nstart 300 0 13\nend 310 3\n')
    runs = launch.read_events(str(events))
    assert [(r['start'], r['restart'], r['end'], r['code']) for r in runs] == [
        (100, 0, None, None), (160, 1, 200, 0), (300, 0, 310, 3)]
    assert launch.elapsed_seconds(runs, now=1000) == (160 - 100) + (200 - 160) + (310 - 300)
    assert launch.elapsed_seconds(runs[:1], now=130) == 30  # still running
    log = tmp_path / 'job.log'
    log.write_text('loading\nTraceback (most recent call last):\n  File "x"\nValueError: bad crop\n'
                   'srun: error: node1: task 0: Exited with exit code 1\n')
    assert launch.last_error(str(log)) == 'ValueError: bad crop'
    log.write_text('voc: /w/metrics.json exists but it was trained from another checkpoint\nsummary\n')
    assert launch.last_error(str(log)).startswith('voc: /w/metrics.json exists but')


def stale_metrics(root, seed: int):
    """A finished result in a fine-tuning seed's work dir that another checkpoint produced."""
    path = os.path.join(root, 'transfer', 'r2o_tiny_cpu', f'seed{seed}', 'voc', 'metrics.json')
    os.makedirs(os.path.dirname(path))
    with open(path, 'w') as handle:
        json.dump({'checkpoint': '/elsewhere/epoch_2.pth', 'checkpoint_sha256': '0' * 64, 'config_sha256': '0' * 64,
                   'finished': True, 'metrics': {'mIoU': 50.0}}, handle)
    return os.path.dirname(os.path.dirname(path))


def test_tiny_on_this_machine_goes_on_past_a_failure(tool_main, tmp_path, monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    reproduce_here = lambda *argv: '\n'.join(tool_main('reproduce.py', list(argv))[1])  # noqa: E731
    root = str(tmp_path / 'reproduce')
    broken = stale_metrics(root, 0)
    args = ('run', 'tiny', '--launcher', 'local', '--seeds', '2', '--work-dir', root)
    result = reproduce(*args, check=False)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert f'warning: {broken}/voc holds a result of another checkpoint or config: the pre-flight of ' \
        'voc-r2o_tiny_cpu-seed0 will stop on it' in out
    assert '[4/6] voc-r2o_tiny_cpu-seed0: FAILED (exit status 1): voc: ' in out and 'exists but' in out
    assert '[5/6] voc-r2o_tiny_cpu-seed1: done in' in out  # the sibling ran after the failure
    assert '[6/6] collect-tiny: skipped, it needs voc-r2o_tiny_cpu-seed0' in out
    status = reproduce_here('status', 'tiny', '--work-dir', root)
    assert 'voc-r2o_tiny_cpu-seed0 failed: exit status 1' in status
    assert f'log: {root}/jobs/voc-r2o_tiny_cpu-seed0.log' in status
    assert re.search(r'last error: voc: \S+metrics\.json exists but it was trained from checkpoint', status)
    assert f'retry (after the fix; only what is not done runs): tools/reproduce.py {" ".join(args)}' in status
    assert 'tables: not collected yet (collect-tiny not run)' in status
    shutil.rmtree(broken)
    out = reproduce_here(*args)
    for name in ('data-tiny', 'pretrain-r2o_tiny_cpu', 'export-r2o_tiny_cpu', 'voc-r2o_tiny_cpu-seed1'):
        assert re.search(rf'\] {name}: done \(', out), out
    assert re.search(r'voc-r2o_tiny_cpu-seed0: done in', out) and 'target tiny is done' in out
    assert os.path.isfile(os.path.join(root, 'results', 'tiny', 'other.md'))
    assert 'nothing to run: target tiny is done' in reproduce_here(*args)
    # Done is keyed by the config: a result recorded under another config fingerprint is to run again.
    metrics_path = os.path.join(root, 'transfer', 'r2o_tiny_cpu', 'seed1', 'voc', 'metrics.json')
    metrics = json.load(open(metrics_path))
    json.dump(dict(metrics, config_sha256='f' * 64), open(metrics_path, 'w'))
    plan = reproduce_here('plan', 'tiny', '--work-dir', root)
    assert [name for name, row in rows(plan).items() if row[3] != 'done'] == ['voc-r2o_tiny_cpu-seed1', 'collect-tiny']
    assert plan.rstrip().endswith(f'warning: {os.path.dirname(metrics_path)} holds a result of another checkpoint or '
                                  'config: the pre-flight of voc-r2o_tiny_cpu-seed1 will stop on it (remove the '
                                  'folder, or choose another --work-dir)')


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    missing = slurm_cluster.missing_programs()
    if missing or os.geteuid() != 0:
        pytest.skip(f'the Slurm drills need root and Debian\'s {" and ".join(slurm_cluster.PACKAGES)}; '
                    'tools/run_tests.sh installs them when run as root')
    from test_slurm import free_ports
    base = str(tmp_path_factory.mktemp('slurm'))
    env = slurm_cluster.start(base, nodes=2, cpus=2, port=free_ports(3))
    yield env
    slurm_cluster.stop(base)


def wait_for(predicate, timeout: float, what: str, show):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f'{what}: not within {timeout} s\n{show()}')


def test_tiny_on_slurm_preempted_failed_and_retried(cluster, tmp_path):
    root = str(tmp_path / 'reproduce')
    slow = tmp_path / 'slow'
    slow.write_text('2')  # seconds of sleep after each pretraining step, until the preemption is seen
    env = dict(cluster, R2O_FAULT_SLOW_FILE=str(slow))
    broken = stale_metrics(root, 1)
    args = ('run', 'tiny', '--launcher', 'slurm', '--partition', 'debug', '--seeds', '2', '--work-dir', root)
    out = reproduce(*args, env=env).stdout
    assert f'warning: {broken}/voc holds a result of another checkpoint or config' in out
    submitted = dict(re.findall(r'submitted (\S+): job (\d+)', out))
    assert list(submitted) == ['data-tiny', 'pretrain-r2o_tiny_cpu', 'export-r2o_tiny_cpu', 'voc-r2o_tiny_cpu-seed0',
                               'voc-r2o_tiny_cpu-seed1', 'collect-tiny']
    ids = submitted
    assert (f"submitted collect-tiny: job {ids['collect-tiny']}, after voc-r2o_tiny_cpu-seed0 "
            f"({ids['voc-r2o_tiny_cpu-seed0']}), voc-r2o_tiny_cpu-seed1 ({ids['voc-r2o_tiny_cpu-seed1']})") in out
    jobs = os.path.join(root, 'jobs')
    log = os.path.join(jobs, 'pretrain-r2o_tiny_cpu.log')
    text = lambda path: open(path, errors='replace').read() if os.path.exists(path) else ''  # noqa: E731
    status = lambda: reproduce('status', 'tiny', '--work-dir', root, env=env).stdout  # noqa: E731
    # Preempted once, through Slurm, after its first logged step.
    wait_for(lambda: 'Epoch(train)' in text(log), 180, 'the first pretraining step', lambda: text(log)[-3000:])
    subprocess.run(['scancel', '--signal=USR1', ids['pretrain-r2o_tiny_cpu']], env=env, check=True)
    wait_for(lambda: PREEMPTED.search(text(log)), 60, 'the preemption', lambda: text(log)[-3000:])
    slow.write_text('0')
    # Requeued under the same job id: a second run submits nothing, everything waits for it.
    again = reproduce(*args, env=env).stdout
    assert 'submitted' not in again and again.startswith('nothing to submit: 5 job(s) queued or running'), again
    seed0 = os.path.join(root, 'transfer', 'r2o_tiny_cpu', 'seed0', 'voc', 'metrics.json')
    wait_for(lambda: os.path.isfile(seed0) and launch.read_events(os.path.join(jobs, 'voc-r2o_tiny_cpu-seed1.events'))
             and launch.read_events(os.path.join(jobs, 'voc-r2o_tiny_cpu-seed1.events'))[-1]['end'], 300,
             'the two transfers', status)
    now = status()
    table = {}
    for line in now.splitlines():  # the table's rows come before the failures' paragraphs
        if line.startswith(('pretrain-', 'voc-', 'collect-')):
            table.setdefault(line.split()[0], line)
    assert re.search(rf"done, preempted and requeued 1 time\(s\)\s+{ids['pretrain-r2o_tiny_cpu']}\s",
                     table['pretrain-r2o_tiny_cpu']), now
    assert ' done ' in table['voc-r2o_tiny_cpu-seed0'] and ' failed ' in table['voc-r2o_tiny_cpu-seed1'], now
    assert 'pending on voc-r2o_tiny_cpu-seed1 (failed)' in table['collect-tiny'], now
    assert f'log: {jobs}/voc-r2o_tiny_cpu-seed1.log' in now
    assert re.search(r'last error: voc: \S+metrics\.json exists but it was trained from checkpoint', now), now
    assert f'retry (after the fix; only what is not done runs): tools/reproduce.py {" ".join(args)}' in now
    assert 'tables: not collected yet' in now
    # The fix, and the retry: that transfer alone is submitted; the collection waits for its new id.
    shutil.rmtree(broken)
    retry = reproduce(*args, env=env).stdout
    resubmitted = dict(re.findall(r'submitted (\S+): job (\d+)', retry))
    assert list(resubmitted) == ['voc-r2o_tiny_cpu-seed1'] and resubmitted['voc-r2o_tiny_cpu-seed1'] not in ids.values()
    assert (f"collect-tiny (job {ids['collect-tiny']}) now waits for voc-r2o_tiny_cpu-seed1 "
            f"({resubmitted['voc-r2o_tiny_cpu-seed1']})") in retry
    table_md = os.path.join(root, 'results', 'tiny', 'other.md')
    wait_for(lambda: 'tables: ' + os.path.join(root, 'results', 'tiny') in status(), 300, 'the collection', status)
    assert re.search(r'\| R2O \(this code\) \|.*\| [\d.]+ \[[-\d.]+, [-\d.]+\], n=2', open(table_md).read())
    final = reproduce(*args, env=env).stdout
    assert final.strip() == f"nothing to submit: target tiny is done; tables in {os.path.join(root, 'results', 'tiny')}"
