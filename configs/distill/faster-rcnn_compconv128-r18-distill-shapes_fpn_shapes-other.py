# The CompConv128 Faster R-CNN-R18 on shapes-other (its usual 8 epochs) with the backbone
# distilled from the shapes teacher on the shapes-other images
# (compconv128-r18_distill-r18-shapes_shapes-other-images.py).
_base_ = '../shapes/faster-rcnn_compconv128-r18_fpn_shapes-other.py'

model = dict(backbone=dict(init_cfg=dict(
    _delete_=True, type='Pretrained',
    checkpoint='work_dirs/compconv128-r18_distill-r18-shapes_shapes-other-images/iter_400.pth')))
