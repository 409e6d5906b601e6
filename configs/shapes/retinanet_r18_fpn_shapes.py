# RetinaNet, ResNet-18 + FPN, trained from scratch on the generated shapes dataset.
# The vanilla twin of retinanet_compconv128-r18_fpn_shapes.py. Sized for a CPU: 256x256
# images, a 64-channel FPN and a 2-conv, 64-channel head with GroupNorm.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    './_base_/shapes_detection.py',
]
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        zero_init_residual=False,
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    bbox_head=dict(
        num_classes=5,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True),
        # anchors from 16 px on P3 (stride 8) for objects of 12..153 px
        anchor_generator=dict(octave_base_scale=2)),
    test_cfg=dict(nms_pre=500))

# RetinaNet needs a longer schedule than Faster R-CNN here (measured, CompConv twin, bbox mAP
# on shapes val): with the 8-epoch schedule of the base it reaches 0.180 (vanilla 0.208);
# AdamW lr 2e-3 instead of 1e-3 gives 0.198, GroupNorm in the FPN 0.166, GIoU loss with 4
# head convs 0.116: neither lr nor norm is the bottleneck, the dense head takes ~8 epochs to
# take off (0.070/0.172/0.323/0.466 after 4/8/12/16 epochs at constant lr) and then learns
# at Faster R-CNN's pace. So both RetinaNet twins train 20 epochs, decaying at 18.
max_epochs = 20
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=200),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[18], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
