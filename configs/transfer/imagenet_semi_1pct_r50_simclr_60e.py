# Semi-supervised ImageNet with 1% of the labels: SimCLR's protocol
# (_base_/imagenet_semi_r50_simclr.py says every value and its source) on
# SimCLR's 1percent.txt (12,811 images, about 13 per class), 60 epochs.
_base_ = ['./_base_/imagenet_semi_r50_simclr.py']

protocol = "SimCLR semi-supervised fine-tuning, 1% labels (SimCLR's 1percent.txt), 60 epochs, batch 4096"
reference_protocol = 'imagenet_semi_1pct'
max_epochs = 60
train_dataloader = dict(dataset=dict(subset_file='data/imagenet/1percent.txt'))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs,
                        eta_min=0.0, convert_to_iter_based=True)]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
