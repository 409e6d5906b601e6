# The vanilla shapes Faster R-CNN-R18 of faster-rcnn_r18_fpn_shapes.py trained to convergence:
# 24 epochs, lr divided by 10 at epoch 22, bbox mAP on shapes val every 4 epochs (the curve and
# the check that 8 more epochs add less than 0.5, configs/distill/faster-rcnn_r18_fpn_24e-ft-8e_shapes.py,
# are in configs/distill/README.md). The teacher of the detector distillation flow
# (configs/distill/*r18-24e*).
_base_ = './faster-rcnn_r18_fpn_shapes.py'

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs, val_interval=4)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=200),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[22], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(interval=4, max_keep_ckpts=1))
