# The shapes detector distillation recipe (faster-rcnn_compconv128-r18_fpn_distill-r18-24e-ft-8e-kd_shapes.py)
# for the COCO zoo teacher: fine-tune the distilled CompConv128 Faster R-CNN R-50-FPN with
# mmdet's 1x schedule, its detection loss plus PKD on the FPN levels (weight 6, as mmrazor's
# PKD Faster R-CNN config), RPN objectness, RoI classification and RoI box-delta distillation
# from the frozen zoo teacher. The checkpoints are ordinary checkpoints of
# configs/compconv/faster-rcnn_compconv128-r50_fpn_1x_coco.py. Not run by this project.
_base_ = './faster-rcnn_compconv128-r50_fpn_distill-ft_1x_coco.py'

model = dict(
    neck_loss_weight=6.0,
    neck_distill_loss=dict(type='PKDLoss'),
    head_distill=dict(
        dense_cls=dict(type='SigmoidKDLoss', loss_weight=1.0),
        roi_cls=dict(type='KnowledgeDistillationKLDivLoss', T=2, loss_weight=3.0),
        roi_reg=dict(type='L1Loss', loss_weight=1.0)))
