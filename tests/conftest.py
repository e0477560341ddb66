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


@pytest.fixture
def mount_tmpfs():
    """``mount_tmpfs(path, options)`` mounts a tmpfs (a small or read-only
    file system) at ``path`` for the test and unmounts it afterwards; skips
    the test where mounting is not allowed (not root, or no permission)."""
    import os
    import subprocess
    mounted = []

    def mount(path, options):
        if os.geteuid() != 0:
            pytest.skip('mounting a small file system needs root (run the suite as root, as CI does)')
        result = subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(path)], capture_output=True,
                                text=True)
        if result.returncode:
            pytest.skip(f'mount is not permitted here: {result.stderr.strip()}')
        mounted.append(str(path))

    yield mount
    for path in reversed(mounted):
        subprocess.run(['umount', path], check=True)
