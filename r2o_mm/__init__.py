"""R2O (Region-to-Object representation learning) on OpenMMLab.

Importing the package registers its modules with mmengine's registries and
allow-lists the classes that mmengine checkpoints hold for weights-only
loading (torch >= 2.6), so resume and load_from work without unpickling
arbitrary code.
"""
import warnings

# mmengine 0.10.7 imports pkg_resources, which setuptools warns about on every
# start; the pin keeps it working, the warning only hides real messages.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)

from .utils.checkpoint import allow_mmengine_checkpoints  # noqa: E402

allow_mmengine_checkpoints()

from . import data, engine, models, transfer  # noqa: E402,F401  (registration)

__version__ = '0.1.0'
