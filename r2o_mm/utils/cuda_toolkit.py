"""The CUDA compiler for building mmcv's ops, without a GPU and without a system toolkit.

tools/setup_env.sh runs this file directly, before r2o_mm is installed, so it
imports nothing from r2o_mm (the standard library, and torch where asked):

    python r2o_mm/utils/cuda_toolkit.py requirements   # pip pins of nvcc & co
    python r2o_mm/utils/cuda_toolkit.py home DEST      # assemble a CUDA_HOME
    python r2o_mm/utils/cuda_toolkit.py system         # a matching system CUDA_HOME
    python r2o_mm/utils/cuda_toolkit.py arch           # TORCH_CUDA_ARCH_LIST

torch's CUDA wheels depend on NVIDIA's `cuda-toolkit` metapackage, whose
extras name the exact compiler packages of that CUDA release
(`cuda-toolkit[nvcc]`: nvidia-cuda-nvcc, nvidia-nvvm (cicc), nvidia-cuda-crt;
`[cccl]`: thrust/cub headers). They unpack under site-packages/nvidia/cuXX/
beside the runtime headers and libraries torch already installed. torch's
extension builder wants one CUDA_HOME holding bin/nvcc, nvvm/, include/ and
lib64/ with an unversioned libcudart.so; `home` builds that folder of links.
"""
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

COMPILER_EXTRAS = ('nvcc', 'cccl')
# Architectures built when no GPU is visible (a login node) and R2O_CUDA_ARCH
# is unset. CUDA 13 dropped Volta (sm_70), so V100 needs a CUDA 12 torch.
# The last entry also carries PTX, which newer GPUs compile at load time.
DEFAULT_ARCHS = {12: '7.0;8.0;9.0+PTX', 13: '8.0;9.0+PTX'}


class ToolkitError(RuntimeError):
    """A problem the set-up reports in one line."""


def release_of(cuda_version):
    """'13.0.96' or '13.0' -> '13.0'."""
    match = re.match(r'(\d+)\.(\d+)', cuda_version or '')
    if not match:
        raise ToolkitError(f'not a CUDA version: {cuda_version!r}')
    return f'{match.group(1)}.{match.group(2)}'


def _extras_of(requirement):
    return set(re.findall(r"extra\s*==\s*['\"]([^'\"]+)['\"]", requirement))


def _pin_of(requirement):
    """'nvidia-nvvm==13.0.88.*; (...) and extra == "nvcc"' -> 'nvidia-nvvm==13.0.88.*'."""
    return re.sub(r'\s+', '', requirement.split(';', 1)[0])


def compiler_requirements(cuda, toolkit_version=None, toolkit_requires=None,
                          installed=()):
    """pip requirements that install nvcc, cicc, crt and cccl for CUDA `cuda`.

    Read from the installed `cuda-toolkit` metapackage when its release is
    `cuda` (then the pins are exact); otherwise the metapackage itself is
    asked for at that release. Packages already installed (the runtime) are
    left out. Returns a list of requirement strings.
    """
    if toolkit_version is not None and release_of(toolkit_version) == release_of(cuda):
        pins = []
        for requirement in toolkit_requires or ():
            if not _extras_of(requirement) & set(COMPILER_EXTRAS):
                continue
            pin = _pin_of(requirement)
            name = re.split(r'[<>=!~\[]', pin, 1)[0].lower()
            if name not in installed and pin not in pins:
                pins.append(pin)
        if pins:
            return pins
    extras = ','.join(COMPILER_EXTRAS)
    return [f'cuda-toolkit[{extras}]=={release_of(cuda)}.*']


def installed_compiler_requirements(cuda):
    """compiler_requirements() for this interpreter's installed packages."""
    try:
        dist = importlib.metadata.distribution('cuda-toolkit')
        version, requires = dist.version, dist.requires
    except importlib.metadata.PackageNotFoundError:
        version, requires = None, None
    installed = {d.metadata['Name'].lower() for d in importlib.metadata.distributions()
                 if d.metadata['Name']}
    # The runtime is torch's; never reinstalled, whatever the extra says.
    return compiler_requirements(cuda, version, requires, installed)


def nvcc_release(nvcc):
    """'13.0' from `nvcc --version`, or None when it does not run."""
    try:
        out = subprocess.run([str(nvcc), '--version'], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'release (\d+\.\d+)', out)
    return match.group(1) if match else None


def is_cuda_home(folder):
    folder = Path(folder)
    return (folder / 'bin' / 'nvcc').is_file() and (folder / 'include' / 'cuda_runtime.h').is_file()


def system_cuda_home(cuda, environ=os.environ, which=None):
    """A system toolkit whose nvcc is release `cuda`, or None.

    Looked for where torch's extension builder looks: CUDA_HOME, CUDA_PATH,
    the folder above `nvcc` on PATH (through links), /usr/local/cuda-X.Y and
    /usr/local/cuda.
    """
    candidates = [environ.get('CUDA_HOME'), environ.get('CUDA_PATH')]
    nvcc = (which or shutil.which)('nvcc')
    if nvcc:
        candidates.append(str(Path(nvcc).resolve().parent.parent))
    candidates += [f'/usr/local/cuda-{release_of(cuda)}', '/usr/local/cuda']
    for folder in candidates:
        if folder and is_cuda_home(folder) and \
                nvcc_release(Path(folder) / 'bin' / 'nvcc') == release_of(cuda):
            return str(Path(folder))
    return None


def assemble_cuda_home(package_roots, dest):
    """Make `dest` a CUDA_HOME of links into `package_roots` (site-packages/nvidia/cuXX).

    Several roots are merged, the first one winning a name: the compiler
    packages may sit in another site-packages than torch's runtime (a
    `pip install --target`, a user site). bin/, nvvm/ and include/ are merged
    trees of links; lib64/ also gets the unversioned libcudart.so the link
    step asks for. Raises ToolkitError naming the first missing piece.
    """
    roots = [Path(root) for root in package_roots if Path(root).is_dir()]
    dest = Path(dest)
    needed = {'bin/nvcc': 'nvidia-cuda-nvcc', 'nvvm/bin/cicc': 'nvidia-nvvm',
              'include/cuda_runtime.h': 'nvidia-cuda-runtime',
              'include/crt/host_config.h': 'nvidia-cuda-crt'}
    for relative, package in needed.items():
        if not any((root / relative).exists() for root in roots):
            where = ', '.join(str(root) for root in roots) or 'no nvidia/cuXX folder'
            raise ToolkitError(f'{relative} is in none of {where}: install {package}')
    if not any(root.glob('lib/libcudart.so.*') for root in roots):
        raise ToolkitError('no lib/libcudart.so.* in any nvidia/cuXX folder: '
                           'install nvidia-cuda-runtime')
    dest.mkdir(parents=True, exist_ok=True)
    for name in ('bin', 'nvvm', 'include'):
        _merge_links(dest / name, [root / name for root in roots])
    lib64 = dest / 'lib64'
    _merge_links(lib64, [root / 'lib' for root in roots])
    runtime = sorted(lib64.glob('libcudart.so.*'))[0]
    _link(lib64 / 'libcudart.so', runtime.resolve())
    return dest


def _merge_links(dest, sources):
    """dest/<name> links to the first source holding <name>; folders held by
    several sources become real folders, merged the same way."""
    sources = [source for source in sources if source.is_dir()]
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    for source in sources:
        names += [entry.name for entry in sorted(source.iterdir()) if entry.name not in names]
    for name in names:
        holders = [source / name for source in sources if (source / name).exists()]
        folders = [holder for holder in holders if holder.is_dir()]
        if len(folders) > 1:
            if (dest / name).is_symlink():
                (dest / name).unlink()
            _merge_links(dest / name, folders)
        else:
            _link(dest / name, holders[0])


def _link(link, target):
    if link.is_symlink() and Path(os.readlink(link)) == Path(target):
        return
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)  # a merged folder from an earlier set of roots
    elif link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


def package_roots(cuda, search_path=None):
    """Every <path entry>/nvidia/cu13 for CUDA 13.x, in import order."""
    major = release_of(cuda).split('.')[0]
    roots = []
    for entry in search_path if search_path is not None else sys.path:
        root = Path(entry or '.') / 'nvidia' / f'cu{major}'
        if root.is_dir() and root.resolve() not in [r.resolve() for r in roots]:
            roots.append(root)
    return roots


def arch_list(cuda, environ=os.environ, visible_capabilities=()):
    """TORCH_CUDA_ARCH_LIST to build: R2O_CUDA_ARCH, else the visible GPUs, else a default.

    Capabilities are (major, minor) pairs. Spaces and commas are accepted as
    separators in R2O_CUDA_ARCH; the answer uses ';', sorted, without repeats.
    """
    asked = environ.get('R2O_CUDA_ARCH', '').strip()
    if asked:
        entries = [e for e in re.split(r'[;,\s]+', asked) if e]
        for entry in entries:
            if not re.fullmatch(r'\d+\.\d+(\+PTX)?', entry):
                raise ToolkitError(f'R2O_CUDA_ARCH: {entry!r} is not an architecture '
                                   'like 8.0 or 9.0+PTX')
    elif visible_capabilities:
        entries = [f'{major}.{minor}' for major, minor in visible_capabilities]
    else:
        major = int(release_of(cuda).split('.')[0])
        default = DEFAULT_ARCHS.get(major, DEFAULT_ARCHS[max(DEFAULT_ARCHS)])
        entries = default.split(';')
    unique = sorted(set(entries), key=lambda e: tuple(int(x) for x in e.split('+')[0].split('.')))
    return ';'.join(unique)


def _torch_cuda():
    import torch
    if not torch.version.cuda:
        raise ToolkitError(f'torch {torch.__version__} is a CPU build: mmcv\'s CUDA ops need a '
                           'CUDA build of torch (set R2O_TORCH_INDEX_URL)')
    return torch.version.cuda


def main(argv):
    command = argv[0] if argv else ''
    if command == 'requirements':
        print(' '.join(installed_compiler_requirements(_torch_cuda())))
    elif command == 'home':
        print(assemble_cuda_home(package_roots(_torch_cuda()), argv[1]))
    elif command == 'system':
        print(system_cuda_home(_torch_cuda()) or '')
    elif command == 'arch':
        import torch
        capabilities = ()
        if torch.cuda.is_available():
            capabilities = [torch.cuda.get_device_capability(i)
                            for i in range(torch.cuda.device_count())]
        print(arch_list(_torch_cuda(), visible_capabilities=capabilities))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv[1:]))
    except ToolkitError as error:
        print(f'[setup_env] error: {error}', file=sys.stderr)
        sys.exit(1)
