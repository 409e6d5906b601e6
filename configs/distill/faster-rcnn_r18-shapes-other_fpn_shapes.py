# The vanilla Faster R-CNN-R18 of configs/shapes/ (same schedule, data and seed) with its
# backbone initialised from the vanilla R-18 pretrained on a different task
# (configs/shapes/faster-rcnn_r18_fpn_shapes-other.py): the pretraining the CompConv student of
# faster-rcnn_compconv128-r18-distill-shapes-other_fpn_shapes.py is distilled from.
_base_ = '../shapes/faster-rcnn_r18_fpn_shapes.py'

model = dict(backbone=dict(init_cfg=dict(
    _delete_=True, type='Pretrained', prefix='backbone.',
    checkpoint='work_dirs/faster-rcnn_r18_fpn_shapes-other/epoch_8.pth')))
