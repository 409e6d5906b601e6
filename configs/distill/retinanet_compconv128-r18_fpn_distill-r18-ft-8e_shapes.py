# Fine-tune the distilled CompConv128 RetinaNet-R18 for 8 epochs (the 4-epoch recipe of
# retinanet_compconv128-r18_fpn_distill-r18-ft-4e_shapes.py, lr decayed for the last epoch).
# Its control is retinanet_r18_fpn_ft-8e_shapes.py (same data, schedule and seed).
_base_ = './retinanet_compconv128-r18_fpn_distill-r18-ft-4e_shapes.py'

max_epochs = 8
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[7], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
