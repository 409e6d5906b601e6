# A CompConv ResNet backbone distilled from an ImageNet ResNet (torchvision) on COCO images:
# the shared part of the compconv128-*_distill-*_coco-images.py configs. The result is a
# backbone checkpoint (keys conv1.weight, layer1.0.conv1..., no teacher) for the
# init_cfg=dict(type='Pretrained', checkpoint=...) of configs/compconv/*.py.
_base_ = ['mmdet::_base_/default_runtime.py', './distill_coco_images.py']
custom_imports = dict(imports=['mmdet_compconv'], allow_failed_imports=False)

resnet = dict(depth=50, num_stages=4, out_indices=(0, 1, 2, 3), style='pytorch',
              norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False)
model = dict(
    type='CompConvDistiller',
    teacher=dict(type='ResNet', **resnet),
    teacher_ckpt='torchvision://resnet50',
    student=dict(type='CompConvResNet', compconv_cfg=dict(type='CompConv', c0=128),
                 compconv_layers=None, frozen_stages=-1, init_cfg=None, **resnet),
    blockwise_iters={{_base_.distill_blockwise_iters}},
    stage_loss_weight=1.0,
    # torchvision's normalisation, as mmdet's configs use for torchvision:// backbones
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32))
train_dataloader = {{_base_.distill_train_dataloader}}
train_cfg = {{_base_.distill_train_cfg}}
param_scheduler = {{_base_.distill_param_scheduler}}
optim_wrapper = {{_base_.distill_optim_wrapper}}
default_hooks = dict(
    logger={{_base_.distill_default_hooks.logger}},
    checkpoint={{_base_.distill_default_hooks.checkpoint}})
log_processor = {{_base_.distill_log_processor}}
# Phase 1 leaves the stem without gradients: DDP must allow that.
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
