from .hooks import ClusterScheduleHook, MaskVisualizationHook, R2OLearningRateHook, TargetEMAHook
from .lars import LARS

__all__ = ['ClusterScheduleHook', 'LARS', 'MaskVisualizationHook', 'R2OLearningRateHook',
           'TargetEMAHook']
