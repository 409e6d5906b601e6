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
