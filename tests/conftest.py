"""Shared fixtures."""
import pytest

from r2o_mm.utils.dist import free_port_pair


@pytest.fixture
def free_port():
    """Free ports for torchrun, instead of fixed numbers that collide with
    whatever else runs on the machine or a port still in TIME_WAIT."""
    return free_port_pair


@pytest.fixture(scope='module')
def free_port_module():
    return free_port_pair
