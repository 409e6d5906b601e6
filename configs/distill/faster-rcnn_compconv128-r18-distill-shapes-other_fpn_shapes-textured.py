# The CompConv128 Faster R-CNN-R18 on shapes-textured (its usual 8 epochs) with the backbone
# distilled from the shapes-other teacher on the shapes-textured images
# (compconv128-r18_distill-r18-shapes-other_shapes-textured-images.py).
_base_ = '../shapes/faster-rcnn_compconv128-r18_fpn_shapes-textured.py'

model = dict(backbone=dict(init_cfg=dict(
    _delete_=True, type='Pretrained',
    checkpoint='work_dirs/compconv128-r18_distill-r18-shapes-other_shapes-textured-images/iter_400.pth')))  # noqa: E501
