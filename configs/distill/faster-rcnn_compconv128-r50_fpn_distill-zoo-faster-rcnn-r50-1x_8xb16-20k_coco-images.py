# Distil mmdet's model-zoo Faster R-CNN R-50-FPN 1x (37.4 box AP) into its CompConv128 twin,
# configs/compconv/faster-rcnn_compconv128-r50_fpn_1x_coco.py, on the COCO train2017 images
# (no labels). The student inherits the zoo model's stem, shortcuts, norms, FPN, RPN and RoI
# heads; phase 1 trains the CompConv blocks block by block, phase 2 the backbone and FPN on the
# teacher's stage and FPN outputs. Then fine-tune with labels:
# faster-rcnn_compconv128-r50_fpn_distill-ft_1x_coco.py. Not run by this project.
_base_ = ['../compconv/faster-rcnn_compconv128-r50_fpn_1x_coco.py', './_base_/distill_coco_images.py']

zoo_url = 'https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/faster_rcnn_r50_fpn_1x_coco/faster_rcnn_r50_fpn_1x_coco_20200130-047c8118.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='CompConvDistiller',
    teacher='mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    teacher_ckpt=zoo_url,
    # the CompConv detector; its backbone starts from the teacher, not from a checkpoint
    student=dict(_base_.model, backbone=dict(_base_.model.backbone, frozen_stages=-1,
                                             norm_eval=False, init_cfg=None)),
    blockwise_iters=_base_.distill_blockwise_iters,
    stage_loss_weight=1.0,
    neck_loss_weight=1.0)
train_dataloader = dict(_base_.distill_train_dataloader, _delete_=True)
train_cfg = dict(_base_.distill_train_cfg, _delete_=True)
param_scheduler = _base_.distill_param_scheduler
optim_wrapper = dict(_base_.distill_optim_wrapper, _delete_=True)
default_hooks = dict(logger=_base_.distill_default_hooks.logger,
                     checkpoint=_base_.distill_default_hooks.checkpoint)
log_processor = dict(_base_.distill_log_processor, _delete_=True)
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
auto_scale_lr = dict(enable=False, base_batch_size=128)
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
