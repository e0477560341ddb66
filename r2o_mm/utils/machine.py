"""What machine a run ran on: float rounding, and therefore a trained
network, can differ between CPUs, GPUs, BLAS builds and thread counts, so
every run records it and the results tables show it."""
from __future__ import annotations

import os
import platform
import re


def _cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as handle:
            for line in handle:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or 'unknown CPU'


def machine_fingerprint() -> dict:
    """CPU model, cores, GPUs, threads, and the torch / BLAS / oneDNN builds;
    ``name`` is the short form shown in tables."""
    import torch
    config = torch.__config__.show()
    blas = re.search(r'BLAS_INFO=(\w+)', config)
    onednn = re.search(r'(?:oneDNN|MKL-DNN)[^\n]*?v([\d.]+)', config)
    isa = re.search(r'CPU capability usage: (\w+)', config)
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    cpu = _cpu_model()
    cores = os.cpu_count()
    isa = isa.group(1) if isa else 'unknown'
    name = f'{len(gpus)}x {gpus[0]}' if gpus else f'{cpu} ({isa}), {cores} cores'
    return dict(name=name, cpu=cpu, cores=cores, isa=isa, gpus=gpus, threads=torch.get_num_threads(),
                torch=torch.__version__, cuda=torch.version.cuda,
                blas=blas.group(1) if blas else 'unknown', onednn=onednn.group(1) if onednn else 'none',
                python=platform.python_version())
