from .hooks import (ClusterScheduleHook, MaskVisualizationHook, PretrainInfoHook, R2OLearningRateHook,
                    SkippedImagesHook, TargetEMAHook)
from .health import MaskQualityHook, StopOnNonFiniteLossHook
from .lars import LARS, LARSOptimWrapperConstructor

__all__ = ['ClusterScheduleHook', 'LARS', 'LARSOptimWrapperConstructor', 'MaskQualityHook',
           'MaskVisualizationHook', 'PretrainInfoHook', 'R2OLearningRateHook', 'SkippedImagesHook',
           'StopOnNonFiniteLossHook', 'TargetEMAHook']
