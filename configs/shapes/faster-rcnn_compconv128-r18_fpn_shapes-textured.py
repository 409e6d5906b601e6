# The CompConv128 twin of faster-rcnn_r18_fpn_shapes-textured.py (every block conv a CompConv,
# C_0 = 128): the student detector of the shapes-other -> shapes-textured backbone flow.
_base_ = './faster-rcnn_r18_fpn_shapes-textured.py'
model = dict(
    backbone=dict(
        type='CompConvResNet',
        compconv_cfg=dict(type='CompConv', c0=128),
        compconv_layers=None))
