"""Transfer of pretrained encoders to mmdetection, mmsegmentation and mmpretrain."""
from . import transforms  # noqa: F401  (registration)
from .hooks import (BackboneLoadCheckHook, BackboneLoadError, FrozenBackboneCheckHook, PreciseBNHook,
                    check_backbone_loaded)

__all__ = ['BackboneLoadCheckHook', 'BackboneLoadError', 'FrozenBackboneCheckHook', 'PreciseBNHook',
           'check_backbone_loaded']
