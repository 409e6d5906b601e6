# Plain fine-tune (no distillation loss, no teacher forward) of the CompConv128 RetinaNet-R18
# distilled from the converged teacher (retinanet_compconv128-r18_fpn_distill-r18-36e_shapes.py),
# 8 epochs with labels: the control that shows what the distillation losses of
# retinanet_compconv128-r18_fpn_distill-r18-36e-ft-8e-kd_shapes.py add.
_base_ = './retinanet_compconv128-r18_fpn_distill-r18-ft-8e_shapes.py'

load_from = 'work_dirs/retinanet_compconv128-r18_fpn_distill-r18-36e_shapes/iter_400.pth'
model = dict(teacher_ckpt='work_dirs/retinanet_r18_fpn_36e_shapes/epoch_36.pth',
             neck_loss_weight=0.0)
