"""What clusters do to a run, on the tiny config (CPU, one thread per
process): SIGKILL at random iterations, SIGTERM inside an epoch in two gloo
processes, a kill while a checkpoint is written, two nodes. Every resumed run
must end with weights bitwise equal to the uninterrupted run."""
import os
import random
import re
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from r2o_mm.data.sample_images import write_photo_folder
from r2o_mm.engine.resume import PREEMPTED_EXIT_CODE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(ROOT, 'tools', 'train.py')
DIST = os.path.join(ROOT, 'tools', 'dist_train.sh')
CONFIG = os.path.join(ROOT, 'configs', 'r2o_tiny_cpu.py')
ENV = dict(os.environ, OMP_NUM_THREADS='1', R2O_SKIP_SETUP='1', PYTHON=sys.executable, PYTHONUNBUFFERED='1')
LOGGED = re.compile(r'Epoch\(train\)\s+\[(\d+)\]\[\s*(\d+)/(\d+)\]')


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp('photos')
    write_photo_folder(str(folder), num_images=16, max_side=96)
    return str(folder)


def options(photos, epochs=3, batch=4):
    return ['--cfg-options', f'train_dataloader.dataset.data_root={photos}', f'train_cfg.max_epochs={epochs}',
            f'train_dataloader.batch_size={batch}', 'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=100']


def final_state(work_dir):
    return torch.load(os.path.join(work_dir, 'last.pth'), map_location='cpu', weights_only=True)


def assert_bitwise_equal(a, b):
    assert a['meta']['iter'] == b['meta']['iter'] and a['meta']['epoch'] == b['meta']['epoch']
    assert a['state_dict'].keys() == b['state_dict'].keys()
    different = [k for k in a['state_dict'] if not torch.equal(a['state_dict'][k], b['state_dict'][k])]
    assert different == []


def run(args, env=None, expect=0):
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env or ENV)
    assert result.returncode == expect, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def interrupt_at(args, iteration: int, sig, per_epoch: int, env=None, again_on=None) -> tuple[int, str]:
    """Starts ``args``, sends ``sig`` once iteration ``iteration`` is logged
    (and again when a line containing ``again_on`` appears); returns the exit
    code and the output."""
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env or ENV, start_new_session=True)
    output, sent = [], False
    for line in process.stdout:
        output.append(line)
        if sent and again_on and again_on in line:
            os.kill(process.pid, sig)
            again_on = None
        found = LOGGED.search(line)
        if found and not sent:
            done = (int(found.group(1)) - 1) * per_epoch + int(found.group(2))
            if done >= iteration:
                os.kill(process.pid, sig)
                sent = True
    return process.wait(timeout=300), ''.join(output)


@pytest.fixture(scope='module')
def reference(photos, tmp_path_factory):
    work = tmp_path_factory.mktemp('reference')
    log = run([sys.executable, TRAIN, CONFIG, '--work-dir', str(work), *options(photos)])
    assert 'weights agree across 1 rank(s)' in log
    state = final_state(work)
    assert state['meta']['run_fingerprint']  # whose run the work dir holds
    state['size'] = os.path.getsize(work / 'last.pth')
    return state


def test_sigkill_at_random_iterations_then_resume_ends_bitwise_equal(photos, reference, tmp_path):
    """Killed three times (no checkpoint at the kill: each resume starts from
    the last epoch's last.pth and replays), 12 iterations in all."""
    kills = sorted(random.Random(0).sample(range(2, 12), 3))
    args = [sys.executable, TRAIN, CONFIG, '--work-dir', str(tmp_path), *options(photos), '--resume']
    for kill in kills:
        code, log = interrupt_at(args, kill, signal.SIGKILL, per_epoch=4)
        assert code == -signal.SIGKILL, log[-2000:]
    log = run(args)
    assert 'Load checkpoint from' in log or 'resumed' in log
    assert_bitwise_equal(final_state(tmp_path), reference)


def test_sigterm_saves_at_that_iteration_and_resume_continues_inside_the_epoch(photos, reference, tmp_path):
    args = [sys.executable, TRAIN, CONFIG, '--work-dir', str(tmp_path), *options(photos)]
    # A second SIGTERM as soon as the next iteration is logged (the save is under way).
    code, log = interrupt_at(args, 5, signal.SIGTERM, per_epoch=4, again_on='Epoch(train)')
    assert code == PREEMPTED_EXIT_CODE, log[-3000:]
    saved = torch.load(tmp_path / 'last.pth', map_location='cpu', weights_only=True)['meta']
    assert saved['iter'] % 4 != 0 and saved['epoch'] == 1  # inside epoch 2 (counted from 0: 1)
    assert f'preempted by SIGTERM: saved {tmp_path}/last.pth at iteration {saved["iter"]}' in log
    resumed = run(args + ['--resume'])
    assert f'resumed epoch: 1, iter: {saved["iter"]}' in resumed
    first = LOGGED.search(resumed[resumed.index('resumed epoch'):])
    assert (int(first.group(1)), int(first.group(2))) == (2, saved['iter'] - 4 + 1)  # the next batch
    assert_bitwise_equal(final_state(tmp_path), reference)


def test_a_kill_while_writing_a_checkpoint_resumes_from_the_previous_good_one(photos, reference, tmp_path):
    args = [sys.executable, TRAIN, CONFIG, '--work-dir', str(tmp_path), *options(photos)]
    killed = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env=dict(ENV, R2O_FAULT_KILL_DURING_SAVE='last.pth',
                                     R2O_FAULT_AFTER_SAVES='1'))
    assert killed.returncode == -signal.SIGKILL
    # The half-written file never replaced last.pth: it still holds epoch 1.
    assert torch.load(tmp_path / 'last.pth', weights_only=True)['meta']['epoch'] == 1
    assert (tmp_path / 'last_checkpoint').read_text() == 'last.pth'  # relative: a copied work dir resumes itself
    log = run(args + ['--resume'])
    assert 'resumed epoch: 1, iter: 4' in log
    assert_bitwise_equal(final_state(tmp_path), reference)


def test_ctrl_c_saves_and_a_copied_work_dir_resumes_from_itself(photos, reference, tmp_path):
    first, copy = tmp_path / 'first', tmp_path / 'copy'
    args = [sys.executable, TRAIN, CONFIG, *options(photos)]
    code, log = interrupt_at([*args[:3], '--work-dir', str(first), *args[3:]], 6, signal.SIGINT, per_epoch=4)
    assert code == 130, log[-3000:]
    saved = torch.load(first / 'last.pth', map_location='cpu', weights_only=True)['meta']
    assert 'Ctrl-C: saving at the end of this iteration' in log and 'Traceback' not in log
    assert f'interrupted by Ctrl-C: saved {first}/last.pth at iteration {saved["iter"]}' in log
    shutil.copytree(first, copy)
    log = run([*args[:3], '--work-dir', str(copy), *args[3:], '--resume'])
    assert f'Load checkpoint from {copy}/last.pth' in log and str(first) not in log
    assert f'resumed epoch: 1, iter: {saved["iter"]}' in log
    assert_bitwise_equal(final_state(copy), reference)


def test_a_full_disk_loses_nothing_and_the_resume_is_bitwise(photos, reference, tmp_path, mount_tmpfs):
    """A tmpfs with room for one and a half checkpoints: epoch 1's last.pth
    fits, epoch 2's temporary copy does not."""
    work = tmp_path / 'small_disk'
    work.mkdir()
    mount_tmpfs(work, f'size={int(reference["size"] * 1.5)}')
    args = [sys.executable, TRAIN, CONFIG, '--work-dir', str(work), *options(photos)]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, env=ENV)
    assert result.returncode == 1, result.stderr[-3000:]
    assert 'Traceback' not in result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert re.match(rf'stopped: could not write checkpoint {work}/last.pth: no space left on device \(it needs '
                    r'about \d+ MB; \d+ MB free there; ', last), last
    assert last.endswith(f'the partial file was removed); the earlier checkpoints and last_checkpoint are as they '
                         f'were. Free space, then resume with: python tools/train.py {CONFIG} --work-dir {work} '
                         + ' '.join(options(photos)) + ' --resume')
    assert {'last.pth', 'last_checkpoint'} <= set(os.listdir(work))
    assert [name for name in os.listdir(work) if '.tmp' in name] == []  # the partial file was removed
    assert torch.load(work / 'last.pth', weights_only=True)['meta']['iter'] == 4
    assert (work / 'last_checkpoint').read_text() == 'last.pth'
    subprocess.run(['mount', '-o', f'remount,size={reference["size"] * 6}', str(work)], check=True)
    log = run(args + ['--resume'])
    assert 'resumed epoch: 1, iter: 4' in log
    assert_bitwise_equal(final_state(work), reference)


def test_an_amp_run_on_the_cpu_finishes_and_resumes_bitwise(tmp_path):
    """--amp (bf16 autocast) on the CPU: 8 photographs, 2 epochs of 2 steps,
    and the same run resumed from its epoch-1 checkpoint in another work dir:
    bitwise the same end."""
    photos = tmp_path / 'photos'
    write_photo_folder(str(photos), num_images=8, max_side=96)
    args = lambda work: [sys.executable, TRAIN, CONFIG, '--amp', '--work-dir', str(work),
                         *options(str(photos), epochs=2), 'default_hooks.checkpoint.interval=1']
    log = run(args(tmp_path / 'straight'))
    assert 'weights agree across 1 rank(s)' in log
    # The config is in the run's log file (the console shows the run's header, progress and end only).
    import glob
    full_log = open(glob.glob(str(tmp_path / 'straight' / '*' / '*.log'))[0]).read()
    assert "type='BF16AutocastOptimWrapper'" in full_log and "type='BF16AutocastOptimWrapper'" not in log
    log = run(args(tmp_path / 'resumed') + ['--resume', str(tmp_path / 'straight' / 'epoch_1.pth')])
    assert 'resumed epoch: 1, iter: 2' in log
    assert_bitwise_equal(final_state(tmp_path / 'resumed'), final_state(tmp_path / 'straight'))


def test_resume_names_its_own_file_in_a_copied_work_dir(tmp_path):
    from r2o_mm.engine.resume import resolve_resume
    original, copy = tmp_path / 'original', tmp_path / 'copy'
    for folder in (original, copy):
        folder.mkdir()
        torch.save({key: {} for key in ('meta', 'state_dict', 'optimizer', 'message_hub')}, folder / 'last.pth')
    # An absolute pointer (mmengine's CheckpointHook writes one) copied along with the work dir.
    (copy / 'last_checkpoint').write_text(str(original / 'last.pth'))
    said = []
    assert resolve_resume(str(copy), say=said.append) == str(copy / 'last.pth')
    assert said == [f'resume: last_checkpoint names {original}/last.pth, outside {copy}; resuming from '
                    f"{copy}/last.pth, this work dir's own file"]
    (copy / 'last_checkpoint').write_text('last.pth')
    assert resolve_resume(str(copy), say=said.append) == str(copy / 'last.pth') and len(said) == 1


def test_resume_with_another_batch_warns_and_with_another_model_refuses(photos, reference, tmp_path):
    args = [sys.executable, TRAIN, CONFIG, '--work-dir', str(tmp_path)]
    run(args + options(photos, epochs=1))
    log = run(args + options(photos, epochs=2, batch=2) + ['--resume'])
    assert log.count('resumed with a different run shape (global_batch 4 -> 2)') == 1
    refused = subprocess.run(args + options(photos, epochs=3) + ['model.depth=34', '--resume'], cwd=ROOT,
                             capture_output=True, text=True, timeout=300, env=ENV)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode != 0 and len(lines) == 1
    assert lines[0].startswith(f'--resume {tmp_path}/last.pth: the checkpoint holds another model (')


@pytest.fixture(scope='module')
def reference_two_processes(photos, tmp_path_factory, free_port_module):
    work = tmp_path_factory.mktemp('reference2')
    log = run([DIST, CONFIG, '2', '--work-dir', str(work), *options(photos, epochs=2, batch=2)],
              env=dict(ENV, PORT=str(free_port_module())))
    assert 'weights agree across 2 rank(s)' in log
    return final_state(work)


def test_sigterm_in_two_gloo_processes_resumes_bitwise(photos, reference_two_processes, tmp_path, free_port):
    env = dict(ENV, PORT=str(free_port()))
    args = [DIST, CONFIG, '2', '--work-dir', str(tmp_path), *options(photos, epochs=2, batch=2)]
    code, log = interrupt_at(args, 1, signal.SIGTERM, per_epoch=4, env=env)
    assert code != 0
    saved = torch.load(tmp_path / 'last.pth', map_location='cpu', weights_only=True)['meta']
    assert saved['iter'] % 4 != 0 and saved['world_size'] == 2, log[-3000:]
    log = run(args + ['--resume'], env=dict(env, PORT=str(free_port())))
    assert f'resumed epoch: 0, iter: {saved["iter"]}' in log and 'weights agree across 2 rank(s)' in log
    assert_bitwise_equal(final_state(tmp_path), reference_two_processes)


def test_two_nodes_on_this_machine_train_and_resume(photos, reference_two_processes, tmp_path, free_port):
    """tools/dist_train.sh started twice as two nodes of one gloo process
    each; both killed in epoch 2, both resumed: bitwise the two-process run."""
    def start_nodes(port, *extra, fault=None):
        env = dict(ENV, NNODES='2', MASTER_ADDR='127.0.0.1', PORT=str(port), **(fault or {}))
        return [subprocess.Popen([DIST, CONFIG, '1', '--work-dir', str(tmp_path),
                                  *options(photos, epochs=2, batch=2), *extra], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, env=dict(env, NODE_RANK=str(rank)),
                                 start_new_session=True) for rank in (0, 1)]
    first = start_nodes(free_port(), fault={'R2O_FAULT_KILL_AT_ITER': '6'})  # every process dies after iteration 6
    seen = [p.communicate(timeout=600)[0] for p in first]
    assert all(p.returncode != 0 for p in first) and 'world size 2, global batch 4' in seen[0]
    assert '[2][2/4]' in seen[0] and '[2][3/4]' not in seen[0]
    resumed = start_nodes(free_port(), '--resume')
    outputs = [p.communicate(timeout=600)[0] for p in resumed]
    assert [p.returncode for p in resumed] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert 'resumed epoch: 1, iter: 4' in outputs[0], outputs[0][-6000:]
    assert 'weights agree across 2 rank(s)' in outputs[0]
    assert_bitwise_equal(final_state(tmp_path), reference_two_processes)


def test_a_node_that_never_arrives_ends_with_one_line(photos, tmp_path, free_port):
    port = free_port()
    env = dict(ENV, NNODES='2', NODE_RANK='0', MASTER_ADDR='127.0.0.1', PORT=str(port), R2O_NODE_TIMEOUT='5')
    result = subprocess.run([DIST, CONFIG, '1', '--work-dir', str(tmp_path), *options(photos)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last == (f'dist_train.sh: not all 2 nodes joined 127.0.0.1:{port} within 5 s; '
                    'start the same command on every node (NODE_RANK 0..1)')
