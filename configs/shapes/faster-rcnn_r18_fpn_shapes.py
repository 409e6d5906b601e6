# Faster R-CNN, ResNet-18 + FPN, trained from scratch on the generated shapes dataset.
# The vanilla twin of faster-rcnn_compconv128-r18_fpn_shapes.py (same everything but the
# backbone convolutions). Sized for a CPU: 256x256 images, a 64-channel FPN and RPN, a
# 256-wide box head, few proposals.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    './_base_/shapes_detection.py',
]
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,  # from scratch: BN statistics must be learned
        zero_init_residual=False,
        init_cfg=None),  # never torchvision:// (offline, and wrong for CompConv layers)
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    rpn_head=dict(
        in_channels=64,
        feat_channels=64,
        # anchors of 16..256 px for objects of 12..153 px on 256x256 images
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64,
                                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2)),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=5)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=100)))
