# R2O with ResNet-50 exactly as released (docs/method.md section 2). Quirk switches:
#   paint_mode='bilinear_truncate'  Q4 (fixed: 'nearest')
#   pool_divisor='clamp_one'        Q6 (fixed: 'area')
#   bn_includes_absent_masks=True   Q5 (fixed: False)
#   kmeans_empty_clusters='collapse'  Q8 (fixed: 'keep'); the stopping rule
#       goes with it: |change of inertia| < tol (released), centre shift < tol
#   K schedules and superpixels-only masks follow the released scheduler (Q9)
#   LARS exclusion: optim_wrapper.optimizer.exclusion, Q10 (schedules/lars_300e.py)
model = dict(
    type='R2O',
    depth=50,
    projector_hidden=4096,
    projection_dim=256,
    predictor_hidden=4096,
    num_clusters=128,  # overwritten every epoch by ClusterScheduleHook
    mask_source='kmeans',
    superpixel_source='slic',
    paint_mode='bilinear_truncate',
    pool_divisor='clamp_one',
    bn_includes_absent_masks=True,
    kmeans_iters=200,
    kmeans_tol=1e-6,
    kmeans_empty_clusters='collapse',
    data_preprocessor=dict(type='R2ODataPreprocessor'),
)
