"""The CUDA compiler for mmcv's ops from the package registry (r2o_mm/utils/cuda_toolkit.py)."""
import glob
import json
import os
import subprocess
import sys
import sysconfig

import pytest
import torch

from r2o_mm.utils.cuda_toolkit import (ToolkitError, arch_list, assemble_cuda_home, compiler_requirements,
                                       installed_compiler_requirements, package_roots, release_of)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MARKER = "(sys_platform == 'linux' and platform_machine == 'x86_64')"
TOOLKIT_REQUIRES = [  # the shape of cuda-toolkit 13.0.3.0's metadata
    f"nvidia-cublas==13.1.1.3.*; {MARKER} and extra == 'all'",
    f"nvidia-cuda-cccl==13.0.85.*; {MARKER} and extra == 'cccl'",
    f"nvidia-cuda-crt==13.0.88.*; {MARKER} and extra == 'nvcc'",
    f"nvidia-cuda-nvcc==13.0.88.*; {MARKER} and extra == 'nvcc'",
    f"nvidia-cuda-runtime==13.0.96.*; {MARKER} and extra == 'nvcc'",
    f"nvidia-nvvm==13.0.88.*; {MARKER} and extra == 'nvcc'",
    f"nvidia-nvvm==13.0.88.*; {MARKER} and extra == 'nvvm'",
]


def test_requirements_are_read_from_the_toolkit_metadata_without_the_runtime():
    pins = compiler_requirements('13.0', '13.0.3.0', TOOLKIT_REQUIRES, installed={'nvidia-cuda-runtime'})
    assert pins == ['nvidia-cuda-cccl==13.0.85.*', 'nvidia-cuda-crt==13.0.88.*', 'nvidia-cuda-nvcc==13.0.88.*',
                    'nvidia-nvvm==13.0.88.*']
    # Another release than the installed metapackage's, or none: the metapackage itself.
    assert compiler_requirements('12.6', '13.0.3.0', TOOLKIT_REQUIRES) == ['cuda-toolkit[nvcc,cccl]==12.6.*']
    assert compiler_requirements('13.0.96', None, None) == ['cuda-toolkit[nvcc,cccl]==13.0.*']
    with pytest.raises(ToolkitError):
        release_of('thirteen')


@pytest.mark.skipif(torch.version.cuda is None, reason='a CPU build of torch has no CUDA release')
def test_this_environment_resolves_exact_pins_of_torchs_cuda_release():
    pins = installed_compiler_requirements(torch.version.cuda)
    names = [pin.split('==')[0] for pin in pins]
    assert set(names) >= {'nvidia-cuda-nvcc', 'nvidia-nvvm', 'nvidia-cuda-crt'}, pins
    assert all(f'=={release_of(torch.version.cuda)}.' in pin for pin in pins if 'cccl' not in pin), pins
    assert 'nvidia-cuda-runtime' not in names  # torch's own, never reinstalled


def test_arch_list_from_setting_gpus_or_default():
    assert arch_list('13.0', {'R2O_CUDA_ARCH': '9.0, 8.0;9.0'}) == '8.0;9.0'
    assert arch_list('13.0', {}, visible_capabilities=[(9, 0), (9, 0)]) == '9.0'
    assert arch_list('13.0', {}) == '8.0;9.0+PTX'
    assert arch_list('12.6', {}) == '7.0;8.0;9.0+PTX'
    with pytest.raises(ToolkitError, match='R2O_CUDA_ARCH'):
        arch_list('13.0', {'R2O_CUDA_ARCH': 'sm_90'})


def fake_root(root, files):
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
    return root


def test_cuda_home_merges_package_folders_and_adds_the_unversioned_runtime(tmp_path):
    compiler = fake_root(tmp_path / 'a' / 'nvidia' / 'cu13', ['bin/nvcc', 'nvvm/bin/cicc', 'include/crt/host_config.h',
                                                             'include/thrust/sort.h'])
    runtime = fake_root(tmp_path / 'b' / 'nvidia' / 'cu13', ['include/cuda_runtime.h', 'include/crt/runtime_only.h',
                                                            'lib/libcudart.so.13', 'lib/libcublas.so.13'])
    assert package_roots('13.0', [str(tmp_path / 'a'), str(tmp_path / 'b'), str(tmp_path / 'none')]) == \
        [compiler, runtime]
    home = assemble_cuda_home([compiler, runtime], tmp_path / 'home')
    for name, source in [('bin/nvcc', compiler), ('nvvm/bin/cicc', compiler), ('include/cuda_runtime.h', runtime),
                         ('include/crt/host_config.h', compiler), ('include/crt/runtime_only.h', runtime),
                         ('include/thrust/sort.h', compiler), ('lib64/libcublas.so.13', runtime)]:
        assert (home / name).read_text() == name.replace('lib64', 'lib'), name
    assert os.path.realpath(home / 'lib64' / 'libcudart.so') == str((runtime / 'lib' / 'libcudart.so.13').resolve())
    assert assemble_cuda_home([compiler, runtime], tmp_path / 'home') == home  # again: unchanged
    with pytest.raises(ToolkitError, match='bin/nvcc is in none of .* install nvidia-cuda-nvcc'):
        assemble_cuda_home([runtime], tmp_path / 'other')


@pytest.mark.skipif(torch.version.cuda is None, reason='a CPU build of torch has no CUDA release')
def test_registry_compiler_installs_and_compiles_a_kernel(tmp_path):
    """What tools/setup_env.sh does without a system toolkit: install the pins
    (into a folder here, not the environment), assemble CUDA_HOME, compile."""
    target = tmp_path / 'site'
    install = subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--disable-pip-version-check',
                              '--no-deps', '--target', str(target),
                              *installed_compiler_requirements(torch.version.cuda)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    roots = package_roots(torch.version.cuda, [str(target), sysconfig.get_paths()['purelib']])
    home = assemble_cuda_home(roots, tmp_path / 'cuda')
    nvcc = str(home / 'bin' / 'nvcc')
    version = subprocess.run([nvcc, '--version'], capture_output=True, text=True)
    assert f'release {release_of(torch.version.cuda)}' in version.stdout
    source = tmp_path / 'scale.cu'
    source.write_text('__global__ void scale(float *x, float a, int n) {\n'
                      '  int i = blockIdx.x * blockDim.x + threadIdx.x;\n  if (i < n) x[i] *= a;\n}\n')
    compiled = subprocess.run([nvcc, '-c', '-arch=sm_90', str(source), '-o', str(tmp_path / 'scale.o')],
                              capture_output=True, text=True, timeout=300)
    assert compiled.returncode == 0, compiled.stderr[-2000:]
    assert (tmp_path / 'scale.o').stat().st_size > 0


def cached_cuda_wheel():
    cache = os.environ.get('R2O_CACHE_DIR', os.path.expanduser('~/.cache/r2o_mm'))
    tag = f'cp{sys.version_info[0]}{sys.version_info[1]}'
    torch_version = torch.__version__.split('+')[0]
    found = glob.glob(os.path.join(cache, 'wheels', f'mmcv-2.1.0_torch-{torch_version}_{tag}_cuda*', 'mmcv-*.whl'))
    return found[0] if found else None


CHECK_OPS = r'''
import json, sys, torch
import mmcv, mmcv.ops
from mmcv.ops import RoIAlign, nms
gen = torch.Generator().manual_seed(0)
features = torch.randn(2, 4, 12, 12, generator=gen)
corners = torch.rand(6, 2, generator=gen) * 8
rois = torch.cat([torch.tensor([[0.], [1.], [0.], [1.], [0.], [1.]]), corners, corners + 3], dim=1)
boxes = torch.cat([corners, corners + 2 + torch.rand(6, 2, generator=gen)], dim=1)
_, keep = nms(boxes, torch.rand(6, generator=gen), 0.3)
print(json.dumps({'file': mmcv.__file__, 'cuda': mmcv.ops.get_compiling_cuda_version(),
                  'roi': RoIAlign((3, 3), 1.0, 2, aligned=True)(features, rois).flatten().tolist(),
                  'keep': keep.tolist()}))
'''


@pytest.mark.skipif(cached_cuda_wheel() is None, reason='no cached CUDA build of mmcv on this machine '
                    '(R2O_CUDA_ARCH=9.0 tools/setup_env.sh makes one in about 25 minutes)')
def test_cached_cuda_wheel_imports_without_a_gpu_and_its_cpu_ops_agree(tmp_path):
    wheel = cached_cuda_wheel()
    target = tmp_path / 'site'
    install = subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--disable-pip-version-check',
                              '--no-deps', '--no-index', '--target', str(target), wheel],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]

    def ops(pythonpath):
        env = dict(os.environ, PYTHONPATH=pythonpath, CUDA_VISIBLE_DEVICES='')
        result = subprocess.run([sys.executable, '-c', CHECK_OPS], capture_output=True, text=True, env=env,
                                timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    cuda_build, cpu_build = ops(str(target)), ops('')
    assert cuda_build['file'].startswith(str(target)) and not cpu_build['file'].startswith(str(target))
    assert cuda_build['cuda'] == release_of(torch.version.cuda)
    assert cuda_build['keep'] == cpu_build['keep']
    assert max(abs(a - b) for a, b in zip(cuda_build['roi'], cpu_build['roi'])) < 1e-6
