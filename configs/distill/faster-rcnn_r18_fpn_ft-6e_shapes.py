# The control of faster-rcnn_compconv128-r18_fpn_distill-r18-ft-6e_shapes.py: the trained
# vanilla teacher fine-tuned for the same 6 epochs (same data, schedule and seed).
_base_ = './faster-rcnn_r18_fpn_ft-4e_shapes.py'

max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[5], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
