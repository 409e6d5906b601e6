# Distillation on the shapes *images* (no labels): data, schedule and runtime shared by the
# shapes distill configs. Phase 1 (block-wise) then phase 2 (chained); the model (teacher,
# student, blockwise_iters) is set by each config. Iteration-based: one "epoch" of 400 images
# is only 50 iterations at batch 8.
_base_ = '../../shapes/_base_/shapes_detection.py'

blockwise_iters = 300
chained_iters = 100
max_iters = blockwise_iters + chained_iters

distill_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale={{_base_.img_scale}}, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5, direction=['horizontal', 'vertical']),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'scale_factor', 'flip', 'flip_direction')),
]
train_dataloader = dict(
    _delete_=True,
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='UnlabeledImageDataset',
        data_root={{_base_.data_root}},
        data_prefix=dict(img='train/'),  # the training images; their labels are not read
        metainfo={{_base_.metainfo}},  # the teacher's classes, kept in the checkpoints' meta
        pipeline=distill_pipeline))
# No evaluation while distilling: evaluate the student with tools/test.py afterwards.
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None

train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters)
# One cosine per phase: phase 2 restarts at half the peak. A single cosine over both phases
# left phase 2 at 1.7e-4 -> 1e-5, where the stage losses barely moved (RetinaNet: 0.44 -> 0.41).
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='CosineRestartLR', by_epoch=False, begin=20, end=max_iters,
         periods=[blockwise_iters - 20, chained_iters], restart_weights=[1.0, 0.5],
         eta_min=1e-5),
]
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.0),
    clip_grad=dict(max_norm=35, norm_type=2))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=1))
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=False)
# Phase 1 leaves the stem, neck and heads without gradients: DDP must allow that.
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
