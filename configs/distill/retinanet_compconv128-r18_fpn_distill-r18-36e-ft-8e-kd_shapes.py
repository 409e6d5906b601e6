# The detector distillation recipe on shapes for RetinaNet: fine-tune the CompConv128
# RetinaNet-R18 distilled from the converged teacher
# (retinanet_compconv128-r18_fpn_distill-r18-36e_shapes.py) for 8 epochs with labels, its
# detection loss plus PKD on the 5 FPN levels (mmrazor's weight 10 for RetinaNet,
# loss_distill_neck0..4) and the teacher's class probabilities of every anchor
# (SigmoidKDLoss). Its control without distillation losses:
# retinanet_compconv128-r18_fpn_distill-r18-36e-ft-8e_shapes.py.
_base_ = './retinanet_compconv128-r18_fpn_distill-r18-36e-ft-8e_shapes.py'

model = dict(
    neck_loss_weight=10.0,
    neck_distill_loss=dict(type='PKDLoss'),
    head_distill=dict(dense_cls=dict(type='SigmoidKDLoss', loss_weight=1.0)))
