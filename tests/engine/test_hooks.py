"""Hook helpers that need no Runner."""
from r2o_mm.engine.hooks import recipe_differences


def test_recipe_differences_name_each_changed_value():
    run = dict(global_batch=256, world_size=8, epochs=300)
    assert recipe_differences(dict(global_batch=4096, world_size=128, epochs=300), run) == [
        'global_batch 256 (released 4096)', 'world_size 8 (released 128)']
    assert recipe_differences(dict(global_batch=256, world_size=8, epochs=None), run) == []
    assert recipe_differences(None, run) == []


def test_non_finite_loss_stops_with_iteration_and_last_values(tmp_path):
    import pytest
    import torch
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class BreaksAtStep3(BaseModel):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(1))
            self.steps = 0

        def forward(self, inputs, data_samples=None, mode='loss'):
            self.steps += 1
            loss = (self.weight * inputs).pow(2).mean()
            return {'loss': loss * float('nan') if self.steps == 3 else loss}

    runner = Runner(model=BreaksAtStep3(), work_dir=str(tmp_path),
                    train_dataloader=dict(dataset=[dict(inputs=torch.ones(1))] * 8, batch_size=1,
                                          sampler=dict(type='DefaultSampler', shuffle=False),
                                          collate_fn=dict(type='default_collate')),
                    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
                    train_cfg=dict(by_epoch=True, max_epochs=1),
                    default_hooks=dict(checkpoint=None, logger=dict(type='LoggerHook', interval=1)),
                    custom_hooks=[dict(type='StopOnNonFiniteLossHook')])
    with pytest.raises(RuntimeError, match=r'loss became nan at iteration 3 \(epoch 1\); last finite logged '
                                           r'values: loss 0\.\d+, lr 0\.01'):
        runner.train()
