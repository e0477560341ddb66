"""Running mmengine's Runner in several CPU processes (tests, debugging)."""
from __future__ import annotations

import torch
from mmengine.config import Config


def _sync_bn_to_bn(node) -> int:
    """Every ``type='SyncBN'`` in a model config becomes ``'BN'``; returns how many."""
    changed = 0
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
            changed += 1
        for value in node.values():
            changed += _sync_bn_to_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            changed += _sync_bn_to_bn(value)
    return changed


def configure_cpu_processes(cfg: Config) -> list[str]:
    """Without CUDA: gloo backend, DDP without device ids, plain BN (torch's
    SyncBatchNorm needs a GPU), and, under torchrun or Slurm, the process group
    started here: mmengine 0.10.7's init_dist calls torch.cuda.set_device even for gloo,
    and the Runner uses a group that already exists. The SyncBN layers of
    mmdet/mmseg models become BN (each process normalises its own batch).
    Returns what was changed, in words (empty with CUDA or one process)."""
    if torch.cuda.is_available():
        return []
    cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    if cfg.launcher == 'none':
        return []
    changes = []
    if _sync_bn_to_bn(cfg.model):
        changes.append('norm: BN in each CPU process (protocol: SyncBN across processes)')
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                 broadcast_buffers=False)
    cfg.sync_bn = None
    if cfg.launcher == 'pytorch' and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend='gloo')
    if cfg.launcher == 'slurm' and not torch.distributed.is_initialized():
        slurm_environment()
        torch.distributed.init_process_group(backend='gloo')
    return changes


def slurm_environment(default_port: int = 29500) -> dict:
    """torch.distributed's variables from Slurm's, as mmengine's slurm
    launcher sets them (which then calls torch.cuda.set_device, so a CPU
    task sets them here): rank and world size from the task, the first host
    of the node list as MASTER_ADDR, MASTER_PORT as given or 29500."""
    import os
    import subprocess
    hosts = subprocess.run(['scontrol', 'show', 'hostnames', os.environ['SLURM_NODELIST']], capture_output=True,
                           text=True, check=True).stdout.split()
    values = dict(RANK=os.environ['SLURM_PROCID'], WORLD_SIZE=os.environ['SLURM_NTASKS'],
                  LOCAL_RANK=os.environ.get('SLURM_LOCALID', '0'), MASTER_ADDR=os.environ.get('MASTER_ADDR', hosts[0]),
                  MASTER_PORT=os.environ.get('MASTER_PORT', str(default_port)))
    os.environ.update(values)
    return values


def close_process_group():
    """An orderly end of a distributed run: every rank waits for the others,
    then the process group is destroyed (left to interpreter exit, gloo's
    threads can abort a rank that finishes while another still tears down)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def free_port_pair() -> int:
    """A port p such that p and p + 1 are both free now (torchrun uses p,
    the launchers' node check p + 1)."""
    import socket
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(('127.0.0.1', 0))
            port = probe.getsockname()[1]
        try:
            with socket.socket() as first, socket.socket() as second:
                first.bind(('127.0.0.1', port))
                second.bind(('127.0.0.1', port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError('no two consecutive free ports found')


def wait_for_nodes(address: str, port: int, nnodes: int, node_rank: int, timeout: float) -> str | None:
    """Before torchrun on several nodes: every node connects to a TCPStore on
    node 0 (``address``, on ``port`` + 1, torchrun's ``port`` stays free)
    within ``timeout`` seconds. None when all
    ``nnodes`` joined, else one line saying who did not. (torchrun's own
    rendezvous would end in a 40-line traceback.)"""
    import datetime
    from torch.distributed import TCPStore
    try:
        store = TCPStore(address, port + 1, nnodes, node_rank == 0, datetime.timedelta(seconds=timeout),
                         wait_for_workers=True)
        store.set(f'node_{node_rank}', 'here')
        if node_rank == 0:  # stay up until every node has said so
            store.wait([f'node_{rank}' for rank in range(nnodes)], datetime.timedelta(seconds=timeout))
    except (RuntimeError, TimeoutError) as error:  # DistStoreError, DistNetworkError are RuntimeErrors
        del error
        return (f'not all {nnodes} nodes joined {address}:{port} within {timeout:g} s; '
                f'start the same command on every node (NODE_RANK 0..{nnodes - 1})')
    return None


def main(argv=None):
    """``python -m r2o_mm.utils.dist ADDRESS PORT NNODES NODE_RANK TIMEOUT [--tool NAME]``:
    a missing node ends with one line that starts with the launcher's name."""
    import argparse
    import sys
    parser = argparse.ArgumentParser(prog='python -m r2o_mm.utils.dist')
    for name, kind in (('address', str), ('port', int), ('nnodes', int), ('node_rank', int), ('timeout', float)):
        parser.add_argument(name, type=kind)
    parser.add_argument('--tool', default='dist_train.sh', help='launcher named in the message')
    args = parser.parse_args(argv)
    problem = wait_for_nodes(args.address, args.port, args.nnodes, args.node_rank, args.timeout)
    if problem:
        sys.exit(f'{args.tool}: {problem}')


if __name__ == '__main__':
    main()
