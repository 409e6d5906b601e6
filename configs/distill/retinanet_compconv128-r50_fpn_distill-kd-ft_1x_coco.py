# The shapes detector distillation recipe (retinanet_compconv128-r18_fpn_distill-r18-36e-ft-8e-kd_shapes.py)
# for the COCO zoo teacher: fine-tune the distilled CompConv128 RetinaNet R-50-FPN with mmdet's
# 1x schedule, its detection loss plus PKD on the FPN levels (weight 10, as mmrazor's PKD
# RetinaNet config) and the teacher's class probabilities of every anchor (SigmoidKDLoss).
# The checkpoints are ordinary checkpoints of configs/compconv/retinanet_compconv128-r50_fpn_1x_coco.py.
# Not run by this project.
_base_ = './retinanet_compconv128-r50_fpn_distill-ft_1x_coco.py'

model = dict(
    neck_loss_weight=10.0,
    neck_distill_loss=dict(type='PKDLoss'),
    head_distill=dict(dense_cls=dict(type='SigmoidKDLoss', loss_weight=1.0)))
