from .hooks import (ClusterScheduleHook, MaskVisualizationHook, PretrainInfoHook, R2OLearningRateHook,
                    SkippedImagesHook, TargetEMAHook)
from .lars import LARS

__all__ = ['ClusterScheduleHook', 'LARS', 'MaskVisualizationHook', 'PretrainInfoHook', 'R2OLearningRateHook',
           'SkippedImagesHook', 'TargetEMAHook']
