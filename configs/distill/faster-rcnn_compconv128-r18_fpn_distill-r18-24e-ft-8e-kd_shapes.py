# The detector distillation recipe on shapes: fine-tune the CompConv128 Faster R-CNN-R18
# distilled from the converged teacher (faster-rcnn_compconv128-r18_fpn_distill-r18-24e_shapes.py)
# for 8 epochs with labels, its detection loss plus distillation from the frozen teacher:
# PKD on the 5 FPN levels (per-channel standardised MSE, mmrazor's weight 6 for Faster R-CNN,
# loss_distill_neck0..4), RPN objectness (SigmoidKDLoss), RoI classification (KL, T = 2) and
# RoI box deltas of the teacher's class (L1) on the student's own sampled RoIs through the
# teacher's RoI head. Its control without distillation losses:
# faster-rcnn_compconv128-r18_fpn_distill-r18-24e-ft-8e_shapes.py.
_base_ = './faster-rcnn_compconv128-r18_fpn_distill-r18-24e-ft-8e_shapes.py'

model = dict(
    neck_loss_weight=6.0,
    neck_distill_loss=dict(type='PKDLoss'),
    head_distill=dict(
        dense_cls=dict(type='SigmoidKDLoss', loss_weight=1.0),
        roi_cls=dict(type='KnowledgeDistillationKLDivLoss', T=2, loss_weight=3.0),
        roi_reg=dict(type='L1Loss', loss_weight=1.0)))
