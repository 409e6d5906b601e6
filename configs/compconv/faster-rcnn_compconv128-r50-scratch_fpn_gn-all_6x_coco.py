# Faster R-CNN + FPN with a CompConv128 ResNet-50 trained from random initialisation, for
# when no ImageNet-pretrained CompConv backbone is available. It follows mmdet's
# scratch/faster-rcnn_r50-scratch_fpn_gn-all_6x_coco.py ("Rethinking ImageNet Pre-training",
# He et al. 2018): GroupNorm in backbone, neck and a 4conv1fc box head, nothing frozen,
# no weight decay on norms, and a 73-epoch ("6x") schedule with lr steps at 65 and 71.
_base_ = './faster-rcnn_compconv128-r50_fpn_1x_coco.py'

norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(
    backbone=dict(
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        zero_init_residual=False,
        init_cfg=None),  # random init: mmdet's Kaiming / constant defaults of ResNet
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg=norm_cfg)))

optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0.))

max_epochs = 73
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[65, 71],
        gamma=0.1)
]

# only keep latest 3 checkpoints
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
