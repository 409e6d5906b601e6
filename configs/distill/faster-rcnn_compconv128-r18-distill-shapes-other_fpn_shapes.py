# The CompConv128 Faster R-CNN-R18 of configs/shapes/ (same schedule, data and seed) with its
# backbone initialised from the CompConv R-18 distilled from a vanilla R-18 pretrained on a
# different task (compconv128-r18_distill-r18-shapes-other_shapes-images.py). Compare with the
# same config from scratch (faster-rcnn_compconv128-r18_fpn_shapes.py) and with the vanilla
# flow (faster-rcnn_r18-shapes-other_fpn_shapes.py).
_base_ = '../shapes/faster-rcnn_compconv128-r18_fpn_shapes.py'

model = dict(backbone=dict(init_cfg=dict(
    _delete_=True, type='Pretrained',
    checkpoint='work_dirs/compconv128-r18_distill-r18-shapes-other_shapes-images/iter_400.pth')))
