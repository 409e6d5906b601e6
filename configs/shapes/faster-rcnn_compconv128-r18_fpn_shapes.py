# Faster R-CNN with a CompConv128 ResNet-18 (every conv of the residual blocks is a
# CompConv with C_0 = 128; the stem and the downsample shortcuts stay plain), trained from
# scratch on shapes with exactly the schedule of its vanilla twin faster-rcnn_r18_fpn_shapes.py.
_base_ = './faster-rcnn_r18_fpn_shapes.py'
model = dict(
    backbone=dict(
        type='CompConvResNet',
        compconv_cfg=dict(type='CompConv', c0=128),
        compconv_layers=None))  # None: all block convs
