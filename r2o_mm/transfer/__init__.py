"""Transfer of pretrained encoders to mmdetection and mmsegmentation."""
from . import transforms  # noqa: F401  (registration)
from .hooks import BackboneLoadCheckHook, BackboneLoadError, PreciseBNHook, check_backbone_loaded

__all__ = ['BackboneLoadCheckHook', 'BackboneLoadError', 'PreciseBNHook', 'check_backbone_loaded']
