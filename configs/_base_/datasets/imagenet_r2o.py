# ImageNet-1k train, unlabelled, with R2O's two views and SLIC prior (docs/method.md section 3).
input_size = 224
# Quirk Q1: the released code always flips both views and ignores the
# configured SLIC segment count; Quirk Q2: SLIC on the normalised tensor.
reference_flip_slip = True
slic_on_normalized = True
train_pipeline = [
    dict(type='LoadImageRGB'),
    dict(type='TwoViews', size=input_size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
         always_flip=reference_flip_slip, blur_probs=(1.0, 0.1), solarize_probs=(0.0, 0.2)),
    dict(type='RawViewSuperpixels', size=input_size, n_segments=100, compactness=10,
         slic_on_normalized=slic_on_normalized, ignore_n_segments=reference_flip_slip,
         cache_dir=None),  # set to the output of tools/build_slic_cache.py to skip SLIC
    dict(type='PackR2OInputs'),
]
train_dataloader = dict(
    batch_size=32,  # per GPU; the paper: 32 x 128 GPUs = 4096
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,
    # DefaultSampler's order; each sample carries (seed, epoch, index), which seed its
    # augmentations: the same views whatever the workers, and after any resume.
    sampler=dict(type='SeededSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='ImageFolderUnlabeled', data_root='data/imagenet', split='train',
                 pipeline=train_pipeline),
)
