"""Hooks of downstream (mmdet/mmseg/mmpretrain) runs: the backbone load check, the
check that a frozen backbone stayed frozen, and precise BN."""
from __future__ import annotations

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch.nn.modules.batchnorm import _BatchNorm


class BackboneLoadError(RuntimeError):
    """The downstream backbone does not hold the exported weights."""


def check_backbone_loaded(backbone: torch.nn.Module, exported: dict[str, torch.Tensor]) -> int:
    """Every exported tensor equals the backbone's, and no backbone tensor is
    left out; raises :class:`BackboneLoadError` naming the keys otherwise.
    Returns the number of tensors compared."""
    state = backbone.state_dict()
    missing = sorted(set(exported) - set(state))
    not_loaded = sorted(set(state) - set(exported))
    differ = sorted(k for k in set(exported) & set(state)
                    if exported[k].shape != state[k].shape
                    or not torch.equal(exported[k].to(state[k].device, state[k].dtype), state[k]))
    if missing or not_loaded or differ:
        parts = []
        for label, keys in (('differ from the exported weights', differ),
                            ('are in the export but not in the backbone', missing),
                            ('were not in the export (left at their initialisation)', not_loaded)):
            if keys:
                parts.append(f'{len(keys)} tensors {label}: {", ".join(keys[:20])}'
                             + (' ...' if len(keys) > 20 else ''))
        raise BackboneLoadError('backbone load check failed; ' + '; '.join(parts))
    return len(exported)


@HOOKS.register_module()
class BackboneLoadCheckHook(Hook):
    """Before training, verifies that ``model.backbone`` equals ``checkpoint``
    (mmengine's Pretrained initialiser loads with strict=False and only warns).
    Skipped when the run resumes (the weights then come from the resumed
    checkpoint)."""

    priority = 'VERY_HIGH'

    def __init__(self, checkpoint: str):
        self.checkpoint = checkpoint

    def before_train(self, runner):
        if runner.cfg.get('resume'):
            runner.logger.info('backbone load check skipped: the run resumes')
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        exported = torch.load(self.checkpoint, map_location='cpu', weights_only=True)
        exported = exported.get('state_dict', exported)
        count = check_backbone_loaded(model.backbone, exported)
        runner.logger.info(f'backbone load check passed: {count} tensors equal {self.checkpoint}')


@HOOKS.register_module()
class FrozenBackboneCheckHook(Hook):
    """After training, verifies that a frozen backbone (linear evaluation)
    still equals the exported weights, its BatchNorm statistics included: no
    weight was updated and no BN layer ran in train mode. ``checkpoint`` is
    set by ``r2o_mm.transfer.run.prepare_config``."""

    priority = 'VERY_LOW'

    def __init__(self, checkpoint: str | None = None):
        self.checkpoint = checkpoint

    def after_train(self, runner):
        if not self.checkpoint:
            raise ValueError('FrozenBackboneCheckHook needs the exported checkpoint (checkpoint=...)')
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        exported = torch.load(self.checkpoint, map_location='cpu', weights_only=True)
        try:
            count = check_backbone_loaded(model.backbone, exported.get('state_dict', exported))
        except BackboneLoadError as error:
            raise BackboneLoadError(f'the frozen backbone changed during training: {error}') from None
        runner.logger.info(f'frozen backbone check passed: after training, all {count} tensors (weights and '
                           f'BatchNorm statistics) still equal {self.checkpoint}')


@HOOKS.register_module()
class PreciseBNHook(Hook):
    """Recomputes BatchNorm statistics before each validation and test.

    Runs ``num_iters`` training batches through the model in train mode, with
    no gradient, each BN layer averaging its batch statistics with equal
    weights (momentum None); then validation uses these statistics. A fresh
    loader is built from the training dataloader config, so the training
    iterator is left alone.
    """

    def __init__(self, num_iters: int = 200):
        self.num_iters = num_iters
        self._loader = None

    def before_val_epoch(self, runner):
        self._recompute(runner)

    def before_test_epoch(self, runner):
        self._recompute(runner)

    def _recompute(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        norms = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
        if not norms or self.num_iters <= 0:
            return
        if self._loader is None:
            loader_cfg = runner.cfg.train_dataloader.copy()
            loader_cfg['persistent_workers'] = False
            self._loader = runner.build_dataloader(loader_cfg, seed=runner.seed)
        momenta = [m.momentum for m in norms]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None
        was_training = model.training
        model.train()
        done = 0
        with torch.no_grad():
            while done < self.num_iters:
                for batch in self._loader:
                    data = model.data_preprocessor(batch, True)
                    model(**data, mode='loss')
                    done += 1
                    if done >= self.num_iters:
                        break
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.train(was_training)
        runner.logger.info(f'precise BN: statistics of {len(norms)} BN layers recomputed '
                           f'over {done} training batches')
