"""Shared fixtures."""
import socket

import pytest


def _free_port_pair() -> int:
    """A port p such that p and p + 1 are both free now (torchrun uses p,
    the launchers' node check p + 1)."""
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


@pytest.fixture
def free_port():
    """Free ports for torchrun, instead of fixed numbers that collide with
    whatever else runs on the machine or a port still in TIME_WAIT."""
    return _free_port_pair


@pytest.fixture(scope='module')
def free_port_module():
    return _free_port_pair
