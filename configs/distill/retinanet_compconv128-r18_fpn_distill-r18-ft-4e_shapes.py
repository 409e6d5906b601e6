# Fine-tune the distilled CompConv128 RetinaNet-R18 (the output of
# retinanet_compconv128-r18_fpn_distill-r18_shapes.py) with labels for 4 epochs: its own
# detection loss plus neck-feature distillation from the frozen vanilla teacher (its FPN
# outputs, per-channel-normalised MSE, weight neck_loss_weight). Data, schedule and seed are
# those of the control, retinanet_r18_fpn_ft-4e_shapes.py. The checkpoint is an ordinary
# checkpoint of configs/shapes/retinanet_compconv128-r18_fpn_shapes.py.
_base_ = './retinanet_r18_fpn_ft-4e_shapes.py'

load_from = 'work_dirs/retinanet_compconv128-r18_fpn_distill-r18_shapes/iter_400.pth'
model = dict(
    _delete_=True,
    type='CompConvDistiller',
    teacher='{{fileDirname}}/../shapes/retinanet_r18_fpn_shapes.py',
    teacher_ckpt='work_dirs/retinanet_r18_fpn_shapes/epoch_20.pth',
    student='{{fileDirname}}/../shapes/retinanet_compconv128-r18_fpn_shapes.py',
    blockwise_iters=0,
    stage_loss_weight=0.0,
    neck_loss_weight=1.0,
    task_loss_weight=1.0)
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
