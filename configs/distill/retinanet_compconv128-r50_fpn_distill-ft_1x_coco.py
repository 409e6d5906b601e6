# Fine-tune the distilled CompConv128 RetinaNet R-50-FPN (the output of
# retinanet_compconv128-r50_fpn_distill-zoo-retinanet-r50-1x_8xb16-20k_coco-images.py)
# with mmdet's 1x schedule and labels: its detection loss plus distillation of the FPN outputs
# from the frozen zoo teacher (neck_loss_weight; 0 for a plain fine-tune). The checkpoints are
# ordinary checkpoints of configs/compconv/retinanet_compconv128-r50_fpn_1x_coco.py
# (tools/test.py takes them with that config). Not run by this project.
_base_ = '../compconv/retinanet_compconv128-r50_fpn_1x_coco.py'

load_from = 'work_dirs/retinanet_compconv128-r50_fpn_distill-zoo-retinanet-r50-1x_8xb16-20k_coco-images/iter_20000.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='CompConvDistiller',
    teacher='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/retinanet/retinanet_r50_fpn_1x_coco/retinanet_r50_fpn_1x_coco_20200130-c2398f9e.pth',  # noqa: E501
    # the weights come from load_from: no backbone checkpoint
    student=dict(_base_.model, backbone=dict(_base_.model.backbone, init_cfg=None)),
    blockwise_iters=0,
    stage_loss_weight=0.0,
    neck_loss_weight=1.0,
    task_loss_weight=1.0)
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
