# Plain fine-tune (no distillation loss, no teacher forward) of the CompConv128 Faster R-CNN-R18
# distilled from the converged teacher (faster-rcnn_compconv128-r18_fpn_distill-r18-24e_shapes.py),
# 8 epochs with labels: the control that shows what the distillation losses of
# faster-rcnn_compconv128-r18_fpn_distill-r18-24e-ft-8e-kd_shapes.py add (same schedule, data,
# seed, initial weights). Also the control of faster-rcnn_r18_fpn_24e-ft-8e_shapes.py's schedule.
_base_ = './faster-rcnn_compconv128-r18_fpn_distill-r18-ft-8e_shapes.py'

load_from = 'work_dirs/faster-rcnn_compconv128-r18_fpn_distill-r18-24e_shapes/iter_400.pth'
model = dict(teacher_ckpt='work_dirs/faster-rcnn_r18_fpn_24e_shapes/epoch_24.pth',
             neck_loss_weight=0.0)
