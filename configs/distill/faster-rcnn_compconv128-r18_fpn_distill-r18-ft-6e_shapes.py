# Fine-tune the distilled CompConv128 Faster R-CNN-R18 for 6 epochs with labels: a plain mmdet
# fine-tune of the student (no teacher: distilling the FPN towards a teacher weaker than the
# result did not help, and its forward costs time). Data, schedule and seed are those of the
# control, faster-rcnn_r18_fpn_ft-6e_shapes.py; the model is
# configs/shapes/faster-rcnn_compconv128-r18_fpn_shapes.py's.
_base_ = './faster-rcnn_r18_fpn_ft-6e_shapes.py'

load_from = 'work_dirs/faster-rcnn_compconv128-r18_fpn_distill-r18_shapes/iter_400.pth'
model = dict(
    backbone=dict(
        type='CompConvResNet',
        compconv_cfg=dict(type='CompConv', c0=128),
        compconv_layers=None))
