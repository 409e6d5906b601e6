# RetinaNet with a CompConv128 ResNet-18 (all block convs; stem and shortcuts plain), trained
# from scratch on shapes with exactly the schedule of its vanilla twin retinanet_r18_fpn_shapes.py.
_base_ = './retinanet_r18_fpn_shapes.py'
model = dict(
    backbone=dict(
        type='CompConvResNet',
        compconv_cfg=dict(type='CompConv', c0=128),
        compconv_layers=None))
