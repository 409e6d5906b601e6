# The control of the distillation experiments: the trained vanilla teacher fine-tuned for the
# same 4 epochs (same data, schedule and seed) as its distilled CompConv student
# (faster-rcnn_compconv128-r18_fpn_distill-r18-ft-4e_shapes.py, which inherits this file).
_base_ = '../shapes/faster-rcnn_r18_fpn_shapes.py'

load_from = 'work_dirs/faster-rcnn_r18_fpn_shapes/epoch_8.pth'
max_epochs = 4
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[3], gamma=0.1),
]
optim_wrapper = dict(optimizer=dict(lr=5e-4))
default_hooks = dict(checkpoint=dict(interval=max_epochs))
