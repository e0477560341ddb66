# Shared base of the Table 4 ablation grid: R2O on ImageNet-100 (the
# 100-class subset of CMC, 126,689 images), evaluated by VOC transfer and
# k-NN accuracy. The paper does not state this grid's schedule; 200 epochs is
# this project's choice (a common ImageNet-100 length), K decays 128 -> 4 over it.
_base_ = ['../r2o_imagenet_300e.py']

max_epochs = 200
train_cfg = dict(max_epochs=max_epochs)
# The paper does not state this grid's batch or epochs: nothing to warn about.
released_recipe = None
default_hooks = dict(checkpoint=dict(interval=50),
                     # k-NN on ImageNet-100's classes only (Table 4's k-NN), 50 train / 20 val images per class
                     knn_monitor=dict(classes_file='data/imagenet/imagenet100.txt', train_per_class=50,
                                      val_per_class=20))
train_dataloader = dict(
    dataset=dict(subset_file='data/imagenet/imagenet100.txt'))  # one class folder per line
