# Table 4, no SLIC prior: K-means runs over the layer3 grid cells (14 x 14 at
# input 224) instead of superpixels; everything else as the full model.
_base_ = ['_base_/r2o_imagenet100.py']

model = dict(superpixel_source='grid')
