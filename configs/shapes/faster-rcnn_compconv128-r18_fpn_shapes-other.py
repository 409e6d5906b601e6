# The CompConv128 twin of faster-rcnn_r18_fpn_shapes-other.py (every block conv a CompConv,
# C_0 = 128): the student detector of the shapes -> shapes-other backbone flow.
_base_ = './faster-rcnn_r18_fpn_shapes-other.py'
model = dict(
    backbone=dict(
        type='CompConvResNet',
        compconv_cfg=dict(type='CompConv', c0=128),
        compconv_layers=None))
