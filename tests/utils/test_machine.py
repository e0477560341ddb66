"""The machine fingerprint every run records."""
import os

import torch

from r2o_mm.utils.machine import machine_fingerprint


def test_fingerprint_names_the_machine_and_its_builds():
    info = machine_fingerprint()
    assert info['cores'] == os.cpu_count() and info['threads'] == torch.get_num_threads()
    assert info['torch'] == torch.__version__ and info['blas'] != ''
    if torch.cuda.is_available():
        assert info['name'] == f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}"
    else:
        assert info['gpus'] == [] and info['name'] == f"{info['cpu']} ({info['isa']}), {info['cores']} cores"

