# Table 4, full R2O: SLIC prior + mask prediction + region-to-object schedule.
_base_ = ['_base_/r2o_imagenet100.py']
