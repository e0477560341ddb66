"""mmengine checkpoints under torch's weights-only loading (r2o_mm.utils.checkpoint)."""
import os

import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint

import r2o_mm  # noqa: F401  (installs the allow-list)
from r2o_mm.utils.checkpoint import UnsafeCheckpointError


class ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='loss'):
        return {'loss': self.linear(inputs).pow(2).mean()}


def toy_runner(work_dir, max_epochs, resume=False):
    dataset = [dict(inputs=torch.full((2,), float(i))) for i in range(8)]
    return Runner(
        model=ToyModel(), work_dir=str(work_dir), resume=resume,
        train_dataloader=dict(dataset=dataset, sampler=dict(type='DefaultSampler', shuffle=True),
                              batch_size=2, collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', milestones=[1]),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        randomness=dict(seed=1), experiment_name=f'toy_{max_epochs}_{resume}')


def test_mmengine_checkpoint_saves_and_resumes(tmp_path):
    first = toy_runner(tmp_path, max_epochs=1)
    first.train()
    saved = first.model.linear.weight.detach().clone()
    resumed = toy_runner(tmp_path, max_epochs=2, resume=True)
    resumed.load_or_resume()
    assert resumed.iter == 4 and resumed.epoch == 1
    assert torch.equal(resumed.model.linear.weight, saved)
    # The message hub's history (HistoryBuffer + numpy) came back too.
    assert len(resumed.message_hub.get_scalar('train/loss').data[0]) > 0
    resumed.train()
    assert resumed.iter == 8


class Unexpected:
    pass


class RunsCode:
    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_checkpoint_with_an_unexpected_object_is_refused(tmp_path):
    path = tmp_path / 'odd.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'extra': Unexpected()}, path)
    with pytest.raises(UnsafeCheckpointError, match='Unexpected'):
        load_checkpoint(ToyModel(), str(path))


def test_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / 'ran'
    payload = RunsCode()
    payload.marker = marker
    path = tmp_path / 'payload.pth'
    torch.save({'state_dict': {}, 'meta': payload}, path)
    with pytest.raises(UnsafeCheckpointError, match='refusing to load'):
        load_checkpoint(ToyModel(), str(path))
    assert not marker.exists()


def test_pickled_getattr_resolves_only_history_buffer_statistics(tmp_path):
    import builtins

    class SneakyGetattr:
        def __reduce__(self):
            # getattr is allowed for HistoryBuffer's statistics only; any other
            # attribute (here its __init__, a way to reach its globals) is refused.
            return (builtins.getattr, (HistoryBuffer, '__init__'))

    path = tmp_path / 'getattr.pth'
    torch.save({'meta': SneakyGetattr()}, path)
    with pytest.raises(UnsafeCheckpointError, match='__init__'):
        load_checkpoint(ToyModel(), str(path))
