"""Running mmengine's Runner in several CPU processes (tests, debugging)."""
from __future__ import annotations

import torch
from mmengine.config import Config


def configure_cpu_processes(cfg: Config):
    """Without CUDA: gloo backend, DDP without device ids, plain BN (torch's
    SyncBatchNorm needs a GPU), and, under torchrun, the process group started
    here: mmengine 0.10.7's init_dist calls torch.cuda.set_device even for gloo,
    and the Runner uses a group that already exists. No-op with CUDA."""
    if torch.cuda.is_available():
        return
    cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    if cfg.launcher == 'none':
        return
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                 broadcast_buffers=False)
    cfg.sync_bn = None
    if cfg.launcher == 'pytorch' and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend='gloo')
