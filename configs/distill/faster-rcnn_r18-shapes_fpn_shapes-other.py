# The vanilla Faster R-CNN-R18 on shapes-other (its usual 8 epochs) with the backbone of the
# converged vanilla shapes teacher: the control of
# faster-rcnn_compconv128-r18-distill-shapes_fpn_shapes-other.py.
_base_ = '../shapes/faster-rcnn_r18_fpn_shapes-other.py'

model = dict(backbone=dict(init_cfg=dict(
    _delete_=True, type='Pretrained', prefix='backbone.',
    checkpoint='work_dirs/faster-rcnn_r18_fpn_24e_shapes/epoch_24.pth')))
