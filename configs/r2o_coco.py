# R2O pretrained on COCO train2017 (scene-centric; Table 2 of the paper).
# The paper's COCO schedule is not public: this is the released ImageNet
# recipe run for 800 epochs, the length scene-centric peers (SlotCon, DenseCL)
# use on COCO. K still decays from 128 to 4 over the whole run.
_base_ = ['r2o_imagenet_300e.py']

max_epochs = 800
train_cfg = dict(max_epochs=max_epochs)
# The released ImageNet batch and GPUs; the COCO epochs are not published.
released_recipe = dict(global_batch=4096, world_size=128, epochs=None)
train_dataloader = dict(
    dataset=dict(_delete_=True, type='CocoUnlabeled', data_root='data/coco',
                 image_dirs=('train2017', ), pipeline={{_base_.train_pipeline}}))
