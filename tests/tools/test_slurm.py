"""Slurm for real: a private cluster on this machine (munged, slurmctld and
two slurmd, CPU nodes; r2o_mm/utils/slurm_cluster.py) runs the batch
script of docs/clusters.md, read from that page, to the end. The job is preempted three
ways on the way, each through Slurm's own mechanism: the time limit with the
page's --signal setting, `scancel --signal=USR1`, and a job in a
higher-priority partition. Each time it saves at the iteration it was in,
is requeued and continues from there; the final weights are bitwise those of
the same run under tools/dist_train.sh with 2 processes. Also: transfer
under Slurm, and slurm_train.sh on a partition without GPUs.

Needs Debian's slurm-wlm and munge and root (tools/run_tests.sh installs
them when it runs as root); elsewhere these tests are skipped, saying so."""
import os
import re
import socket
import subprocess
import sys
import time

import pytest
import torch

from r2o_mm.data.sample_images import write_photo_folder
from r2o_mm.utils import slurm_cluster

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = 'configs/r2o_tiny_cpu.py'
LOGGED = re.compile(r'Epoch\(train\)\s+\[(\d+)\]\[\s*(\d+)/(\d+)\]')
PREEMPTED = re.compile(r'preempted by (SIG\w+): saved \S+ at iteration (\d+)')
EPOCHS, PER_EPOCH = 6, 4  # 16 photographs, 2 per task x 2 tasks: 4 iterations an epoch


def free_ports(count: int) -> int:
    """A port p such that p .. p + count - 1 are free now."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(('127.0.0.1', 0))
            port = probe.getsockname()[1]
        sockets = []
        try:
            for offset in range(count):
                sockets.append(socket.socket())
                sockets[-1].bind(('127.0.0.1', port + offset))
            return port
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError('no free ports')


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    missing = slurm_cluster.missing_programs()
    if missing or os.geteuid() != 0:
        pytest.skip(f'the Slurm drills need root and Debian\'s {" and ".join(slurm_cluster.PACKAGES)} '
                    f'({"missing: " + ", ".join(missing) if missing else "not root"}); tools/run_tests.sh '
                    'installs them when run as root')
    base = str(tmp_path_factory.mktemp('slurm'))
    env = slurm_cluster.start(base, nodes=2, cpus=2, port=free_ports(3))
    yield dict(env, OMP_NUM_THREADS='1', PYTHON=sys.executable, R2O_SKIP_SETUP='1', PYTHONUNBUFFERED='1')
    slurm_cluster.stop(base)


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp('photos')
    write_photo_folder(str(folder), num_images=16, max_side=96)
    return str(folder)


def options(photos):
    return ['--cfg-options', f'train_dataloader.dataset.data_root={photos}', f'train_cfg.max_epochs={EPOCHS}',
            'train_dataloader.batch_size=2', 'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=100']


def readme_batch_script() -> str:
    """The batch script of docs/clusters.md (the page the README sends cluster users to)."""
    with open(os.path.join(ROOT, 'docs', 'clusters.md')) as handle:
        found = re.search(r'```\w*\n(#!/bin/bash\n#SBATCH.*?)```', handle.read(), flags=re.S)
    assert found, 'docs/clusters.md shows no batch script'
    return found.group(1)


def final_state(work_dir):
    return torch.load(os.path.join(work_dir, 'last.pth'), map_location='cpu', weights_only=True)


def assert_bitwise_equal(a, b):
    assert (a['meta']['epoch'], a['meta']['iter']) == (b['meta']['epoch'], b['meta']['iter'])
    different = [k for k in a['state_dict'] if not torch.equal(a['state_dict'][k], b['state_dict'][k])]
    assert a['state_dict'].keys() == b['state_dict'].keys() and different == []


def read(path) -> str:
    return open(path, errors='replace').read() if os.path.exists(path) else ''


def wait_for(predicate, timeout, what, log):
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = read(log)
        if predicate(text):
            return text
        time.sleep(0.3)
    raise AssertionError(f'{what}: not within {timeout} s; the log ends\n{read(log)[-4000:]}')


def iterations_after(text: str, marker: str) -> int:
    """The last iteration logged after the last ``marker`` (0 without any)."""
    tail = text[text.rindex(marker):] if marker in text else text
    found = [(int(e) - 1) * int(n) + int(i) for e, i, n in LOGGED.findall(tail)]
    return max(found, default=0)


def job_state(job: str, env) -> dict:
    line = subprocess.run(['scontrol', '-o', 'show', 'job', job], capture_output=True, text=True, env=env).stdout
    return dict(item.split('=', 1) for item in line.split() if '=' in item)


@pytest.fixture(scope='module')
def reference(photos, tmp_path_factory, cluster):
    """The same run under tools/dist_train.sh with 2 processes, never interrupted."""
    work = tmp_path_factory.mktemp('dist_train_reference')
    result = subprocess.run(['tools/dist_train.sh', CONFIG, '2', '--work-dir', str(work), *options(photos)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env=dict(cluster, PORT=str(free_ports(2))))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return final_state(work)


def test_the_readme_batch_script_preempted_three_ways_ends_bitwise(cluster, photos, reference, tmp_path):
    script, log, work, slow = tmp_path / 'job.sh', tmp_path / 'job.log', tmp_path / 'work', tmp_path / 'slow'
    script.write_text(readme_batch_script())
    assert '--signal=USR1@180' in script.read_text() and 'B:USR1' not in script.read_text()
    env = dict(cluster, CONFIG=CONFIG, PORT=str(free_ports(2)), R2O_FAULT_SLOW_FILE=str(slow),
               TRAIN_ARGS=' '.join(['--work-dir', str(work), *options(photos)]))
    # Seconds of sleep after each iteration (numbers unchanged): the first run outlasts the signal
    # that the time limit sends (USR1 180 s before 4 minutes: about 1 minute after the start).
    slow.write_text('3')
    job = subprocess.run(['sbatch', '--parsable', f'--chdir={ROOT}', '--nodes=2', '--ntasks-per-node=1',
                          '--gres=none', '--time=4', f'--output={log}', str(script)], capture_output=True,
                         text=True, env=env, check=True).stdout.strip().split(';')[0]
    try:
        # (c) The time limit: nothing but Slurm's --signal sends it.
        text = wait_for(lambda t: PREEMPTED.search(t), 240, 'the time-limit signal', log)
        slow.write_text('0.5')
        first = PREEMPTED.findall(text)[0]
        assert first[0] == 'SIGUSR1' and 0 < int(first[1]) < EPOCHS * PER_EPOCH
        # 'done', or scontrol stopped with the job it requeued (the restarts are counted at the end).
        said = wait_for(lambda t: re.search(f'scontrol requeue {job}: .*\n', t), 60, 'requeue', log)
        assert re.search(f'scontrol requeue {job}: (done|sent; scontrol was ended by SIG[A-Z]+ before)', said), said
        # (a) scancel --signal=USR1 once the requeued job has made two steps.
        wait_for(lambda t: t.count('resumed epoch') == 1 and iterations_after(t, 'resumed epoch') >= int(first[1]) + 2,
                 120, 'the first resumed run', log)
        subprocess.run(['scancel', '--signal=USR1', job], env=env, check=True)
        text = wait_for(lambda t: len(PREEMPTED.findall(t)) == 2, 60, 'the scancel signal', log)
        second = PREEMPTED.findall(text)[1]
        # (b) A job in the higher-priority partition takes every CPU of both nodes.
        wait_for(lambda t: t.count('resumed epoch') == 2 and iterations_after(t, 'resumed epoch') >= int(second[1]) + 2,
                 120, 'the second resumed run', log)
        subprocess.run(['sbatch', '-p', 'high', '--nodes=2', '--ntasks-per-node=2', '--time=1', '--output=/dev/null',
                        '--wrap', 'sleep 2'], env=env, check=True, capture_output=True)
        text = wait_for(lambda t: len(PREEMPTED.findall(t)) == 3, 60, 'the partition preemption', log)
        slow.write_text('0')
        wait_for(lambda t: job_state(job, env).get('JobState') == 'COMPLETED', 240, 'the end of the job', log)
    finally:
        subprocess.run(['scancel', job], env=env)
    text = read(log)
    saved = [int(i) for _, i in PREEMPTED.findall(text)]
    assert saved == sorted(saved) and len(set(saved)) == len(saved)  # each run went on from the last save
    assert text.count('resumed epoch') == len(saved) and 'weights agree across 2 rank(s)' in text
    assert int(job_state(job, env)['Restarts']) == len(saved) >= 3
    assert_bitwise_equal(final_state(work), reference)


def test_slurm_train_sh_on_a_partition_without_gpus(cluster, photos, tmp_path):
    """GPUs asked of a CPU partition: one line. GPUS_PER_NODE=0: no GRES asked,
    one task per node, gloo, mmengine's slurm launcher without CUDA."""
    args = ['tools/slurm_train.sh', 'debug', 'r2o', CONFIG, '2', '--work-dir', str(tmp_path), *options(photos)]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, env=cluster)
    assert result.returncode == 2 and result.stdout == ''
    assert result.stderr.strip() == ('slurm_train.sh: partition debug has no GPU GRES (sinfo: (null) ); for CPU '
                                     'nodes set GPUS_PER_NODE=0')
    args = [a if not a.startswith('train_cfg.max_epochs=') else 'train_cfg.max_epochs=1' for a in args]  # 4 steps
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env=dict(cluster, GPUS_PER_NODE='0', PORT=str(free_ports(2))))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'world size 2, global batch 4' in result.stdout and 'weights agree across 2 rank(s)' in result.stdout
    assert torch.load(tmp_path / 'epoch_1.pth', weights_only=True)['meta']['iter'] == PER_EPOCH


def test_transfer_under_slurm(cluster, tmp_path):
    """A short VOC transfer on generated data, two tasks on the two nodes,
    checked as the torchrun path is: one pre-flight, the backbone load check
    on every rank, the same weights on every rank, metrics.json written once."""
    import torchvision
    from r2o_mm.data.synthetic_scenes import write_synthetic_datasets
    from r2o_mm.transfer.small import as_cli, small_transfer_options
    voc = write_synthetic_datasets(str(tmp_path / 'scenes'), num_train=4, num_val=2, size=(64, 80),
                                   layouts=('voc',))['voc']
    checkpoint = tmp_path / 'resnet18.pth'
    torch.save(torchvision.models.resnet18().state_dict(), checkpoint)
    env = dict(cluster, GPUS_PER_NODE='0', PORT=str(free_ports(2)), WORK_DIR=str(tmp_path / 'out'),
               CFG_OPTIONS=' '.join(as_cli(small_transfer_options('voc', voc, iterations=2, batch=2))))
    result = subprocess.run(['tools/slurm_transfer.sh', 'debug', str(checkpoint), '2', 'voc'], cwd=ROOT,
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'voc: ok' in result.stdout
    log = (tmp_path / 'out' / 'voc' / 'transfer.log').read_text()
    assert log.count('backbone load check passed') == 1 and 'weights agree across 2 rank(s)' in log
    import json
    metrics = json.loads((tmp_path / 'out' / 'voc' / 'metrics.json').read_text())
    assert metrics['world_size'] == 2 and metrics['finished'] and 'mIoU' in metrics['metrics']
