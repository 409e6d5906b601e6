# The backbone-only flow on shapes, as a user with an ImageNet ResNet runs it: the teacher is
# the vanilla R-18 backbone of a detector trained on a *different* task
# (configs/shapes/faster-rcnn_r18_fpn_shapes-other.py: other seed, disjoint classes); the
# student, its CompConv128 twin (every block conv), learns from the shapes training images
# without labels. The result is a backbone checkpoint for
# faster-rcnn_compconv128-r18-distill-shapes-other_fpn_shapes.py (init_cfg, then the usual
# 8-epoch schedule); faster-rcnn_r18-shapes-other_fpn_shapes.py is the same flow with the
# teacher's own vanilla backbone.
#
#   python tools/train.py configs/shapes/faster-rcnn_r18_fpn_shapes-other.py
#   python tools/train.py configs/distill/compconv128-r18_distill-r18-shapes-other_shapes-images.py
_base_ = './_base_/distill_shapes.py'

resnet = dict(depth=18, num_stages=4, out_indices=(0, 1, 2, 3), style='pytorch',
              norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
              frozen_stages=-1, init_cfg=None)
model = dict(
    type='CompConvDistiller',
    teacher=dict(type='ResNet', **resnet),
    # a detector checkpoint: the backbone teacher takes its `backbone.` keys
    teacher_ckpt='work_dirs/faster-rcnn_r18_fpn_shapes-other/epoch_8.pth',
    student=dict(type='CompConvResNet', compconv_cfg=dict(type='CompConv', c0=128),
                 compconv_layers=None, **resnet),
    blockwise_iters={{_base_.blockwise_iters}},
    stage_loss_weight=1.0,
    # the detectors' normalisation (mmdet's Faster R-CNN base), which the teacher learned with
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32))
