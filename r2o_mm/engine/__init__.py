from .hooks import (ClusterScheduleHook, MaskVisualizationHook, PretrainInfoHook, R2OLearningRateHook,
                    SkippedImagesHook, TargetEMAHook)
from .lars import LARS, LARSOptimWrapperConstructor

__all__ = ['ClusterScheduleHook', 'LARS', 'LARSOptimWrapperConstructor', 'MaskVisualizationHook', 'PretrainInfoHook', 'R2OLearningRateHook',
           'SkippedImagesHook', 'TargetEMAHook']
