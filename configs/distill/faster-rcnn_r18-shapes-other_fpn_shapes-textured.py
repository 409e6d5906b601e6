# The vanilla Faster R-CNN-R18 on shapes-textured (its usual 8 epochs) with the backbone of the
# vanilla shapes-other R-18: the control of
# faster-rcnn_compconv128-r18-distill-shapes-other_fpn_shapes-textured.py.
_base_ = '../shapes/faster-rcnn_r18_fpn_shapes-textured.py'

model = dict(backbone=dict(init_cfg=dict(
    _delete_=True, type='Pretrained', prefix='backbone.',
    checkpoint='work_dirs/faster-rcnn_r18_fpn_shapes-other/epoch_8.pth')))
