# faster-rcnn_compconv128-r50_fpn_1x_coco.py with a CompConv128 neck and RPN head too:
# the FPN's 1x1 lateral and 3x3 output convs and the RPN head's 3x3 conv are CompConv128.
# (The FPN of Faster R-CNN has no extra convs: its 5th level is a max-pool.) The neck and
# heads are initialised as in mmdet; only the backbone is pretrained.
_base_ = './faster-rcnn_compconv128-r50_fpn_1x_coco.py'

model = dict(
    neck=dict(
        type='CompConvFPN',
        compconv_cfg=dict(type='CompConv', c0=128),
        compconv_convs=('lateral', 'fpn')),
    rpn_head=dict(type='CompConvRPNHead', compconv_cfg=dict(type='CompConv', c0=128)))
