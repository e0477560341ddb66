from .amp import BF16AutocastOptimWrapper
from .hooks import (ClusterScheduleHook, MaskVisualizationHook, PretrainInfoHook, R2OLearningRateHook,
                    SkippedImagesHook, TargetEMAHook, ThroughputHook)
from .health import MaskQualityHook, StopOnNonFiniteLossHook
from .lars import LARS, LARSOptimWrapperConstructor
from .resume import (LastCheckpointHook, PreemptionHook, R2ORunner, ResumableEpochBasedTrainLoop,
                     RunShapeHook, WeightsAgreeHook)

__all__ = ['BF16AutocastOptimWrapper', 'ClusterScheduleHook', 'LARS', 'LARSOptimWrapperConstructor', 'MaskQualityHook',
           'MaskVisualizationHook', 'PretrainInfoHook', 'R2OLearningRateHook', 'SkippedImagesHook',
           'StopOnNonFiniteLossHook', 'TargetEMAHook', 'ThroughputHook', 'LastCheckpointHook', 'PreemptionHook', 'R2ORunner',
           'ResumableEpochBasedTrainLoop', 'RunShapeHook', 'WeightsAgreeHook']
