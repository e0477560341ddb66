"""Checkpoint checks, the automatic resume's choice, the seeded sampler."""
import os

import numpy as np
import pytest
import torch
from mmengine.dataset import DefaultSampler

from r2o_mm.data.sampler import SeededSampler, sample_seed, seed_for_sample
from r2o_mm.engine.resume import checkpoint_problem, model_mismatch, resolve_resume


def save(path, **extra):
    payload = {'meta': {'epoch': 1, 'iter': 4}, 'state_dict': {'w': torch.ones(2)}, 'optimizer': {},
               'message_hub': {}}
    payload.update(extra)
    torch.save(payload, path)
    return str(path)


def test_checkpoint_problem_names_what_is_wrong(tmp_path):
    good = save(tmp_path / 'good.pth')
    assert checkpoint_problem(good) is None
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(open(good, 'rb').read()[:200])
    assert checkpoint_problem(str(truncated)) == 'truncated or corrupt (not a complete torch archive)'
    weights_only = tmp_path / 'weights.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}}, weights_only)
    assert checkpoint_problem(str(weights_only)) == 'lacks meta, optimizer, message_hub'
    assert checkpoint_problem(str(tmp_path / 'nope.pth')) == 'no such file'


def test_resume_falls_back_to_the_newest_complete_checkpoint(tmp_path):
    first = save(tmp_path / 'epoch_1.pth')
    os.utime(first, (1, 1))
    second = save(tmp_path / 'epoch_2.pth')
    os.utime(second, (2, 2))
    last = tmp_path / 'last.pth'
    save(last)
    (tmp_path / 'last_checkpoint').write_text(str(last))
    said = []
    assert resolve_resume(str(tmp_path), said.append) == str(last) and said == []
    last.write_bytes(last.read_bytes()[:100])  # killed while writing (without the atomic rename)
    assert resolve_resume(str(tmp_path), said.append) == second
    assert said == [f'resume: {last} is truncated or corrupt (not a complete torch archive); '
                    f'falling back to the newest complete checkpoint in {tmp_path}']
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert resolve_resume(str(empty), said.append) is None


def test_model_mismatch_names_keys_and_shapes(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    path = save(tmp_path / 'a.pth', state_dict=model.state_dict())
    assert model_mismatch(path, model) is None
    other = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Linear(4, 1), torch.nn.ReLU(), torch.nn.Linear(1, 1))
    assert model_mismatch(path, other) == ('missing: 3.bias, 3.weight (2); other shapes: 0.bias, 0.weight, '
                                           '1.weight (3)')


def test_seeded_sampler_is_the_default_order_with_seeds_and_a_start():
    dataset = list(range(10))
    plain, seeded = DefaultSampler(dataset, seed=7), SeededSampler(dataset, seed=7)
    for epoch in (0, 3):
        plain.set_epoch(epoch)
        seeded.set_epoch(epoch)
        assert list(seeded) == [(7, epoch, index) for index in plain]
    seeded.start = 4
    assert list(seeded) == [(7, 3, index) for index in list(plain)[4:]]
    assert len(list(seeded)) == 10 and len(seeded) == 10  # the start is used once


def test_sample_seeds_are_functions_of_seed_epoch_and_index():
    seeds = {sample_seed(0, epoch, index) for epoch in range(3) for index in range(100)}
    assert len(seeds) == 300 and sample_seed(0, 1, 2) == sample_seed(0, 1, 2)
    seed_for_sample(0, 1, 2)
    first = (torch.rand(3), np.random.rand(3))
    torch.rand(5)  # whatever ran in between
    seed_for_sample(0, 1, 2)
    again = (torch.rand(3), np.random.rand(3))
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])


@pytest.mark.parametrize('workers', [0, 2])
def test_views_do_not_depend_on_workers_or_earlier_draws(tmp_path, workers):
    """The same (seed, epoch, index) gives bitwise the same two views."""
    from mmengine.registry import DATASETS

    import r2o_mm  # noqa: F401
    from r2o_mm.data.sample_images import write_photo_folder
    write_photo_folder(str(tmp_path), num_images=4, max_side=64)
    pipeline = [dict(type='LoadImageRGB'), dict(type='TwoViews', size=32),
                dict(type='RawViewSuperpixels', size=32), dict(type='PackR2OInputs')]
    dataset = DATASETS.build(dict(type='ImageList', data_root=str(tmp_path), pipeline=pipeline))
    reference = [dataset[(5, 2, index)] for index in range(4)]
    torch.manual_seed(123)  # another running state
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers,
                                         sampler=[(5, 2, index) for index in (3, 1, 0, 2)])
    for index, sample in zip((3, 1, 0, 2), loader):
        assert torch.equal(sample['inputs']['view1'], reference[index]['inputs']['view1'])
        assert torch.equal(sample['inputs']['view2'], reference[index]['inputs']['view2'])
    other_epoch = dataset[(5, 3, 0)]
    assert not torch.equal(other_epoch['inputs']['view1'], reference[0]['inputs']['view1'])


def test_a_preemption_signal_after_training_is_ignored_until_exit():
    """Slurm's time-limit signal landing while a finished run shuts down (Python puts its handlers back to
    the default action, which for SIGUSR1 and SIGTERM is to die) must not fail the finished job."""
    import signal
    import types

    from r2o_mm.engine.resume import PreemptionHook
    saved = {number: signal.getsignal(number) for number in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT)}
    try:
        hook = PreemptionHook(signals=('SIGTERM', 'SIGUSR1'))
        runner = types.SimpleNamespace(logger=None)
        hook.before_train(runner)
        assert signal.getsignal(signal.SIGUSR1) == hook._on_signal
        hook.after_train(runner)
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN and signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGUSR1)  # ignored: this process goes on, nothing is flagged
        assert hook.received == 0
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


def test_the_requeue_line_says_what_scontrol_did():
    """Slurm stops the job's processes when it accepts a requeue, scontrol among them: a
    signal-ended scontrol is reported as sent, not as an empty failure."""
    import subprocess

    from r2o_mm.engine.resume import requeue_outcome

    def result(code, stderr=''):
        return subprocess.CompletedProcess(['scontrol', 'requeue', '7'], code, '', stderr)

    assert requeue_outcome(result(0)) == 'done'
    assert requeue_outcome(result(-15)) == ('sent; scontrol was ended by SIGTERM before it answered '
                                            '(Slurm stops the job when it requeues it)')
    assert requeue_outcome(result(1, 'scontrol: error: Requested operation is presently disabled\n')) == \
        'scontrol: error: Requested operation is presently disabled'
    assert requeue_outcome(result(2)) == 'failed with exit status 2'
