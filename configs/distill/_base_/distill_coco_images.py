# Distillation on the COCO train2017 *images* (labels are not read): the dataloader, schedule
# and hooks of the COCO distill configs, under distill_* names so that a config can list this
# file next to a detector config (mmengine refuses a key defined by two bases) and pick them:
#   train_dataloader = dict(_base_.distill_train_dataloader, _delete_=True) ...
# NOT RUN by this project (no COCO, no GPU here): the schedule is a starting point, not a
# measured recipe. 8 GPUs x 16 images of up to 512x512: phase 1 (block-wise)
# distill_blockwise_iters, then phase 2 (chained), 20k iterations = 2.56M images, about 22
# passes over train2017.
distill_data_root = 'data/coco/'
distill_blockwise_iters = 15000
distill_max_iters = 20000

distill_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResize', scale=(1333, 800), ratio_range=(0.5, 1.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(512, 512)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'scale_factor', 'flip', 'flip_direction')),
]
distill_train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='UnlabeledImageDataset',
        data_root=distill_data_root,
        ann_file='annotations/instances_train2017.json',  # only its "images" are read
        data_prefix=dict(img='train2017/'),
        pipeline=distill_pipeline))
distill_train_cfg = dict(type='IterBasedTrainLoop', max_iters=distill_max_iters)
# One cosine per phase (phase 2 restarts at half the peak), as the shapes configs measured.
distill_param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='CosineRestartLR', by_epoch=False, begin=1000, end=distill_max_iters,
         periods=[distill_blockwise_iters - 1000, distill_max_iters - distill_blockwise_iters],
         restart_weights=[1.0, 0.5], eta_min=1e-6),
]
distill_optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.0),
    clip_grad=dict(max_norm=35, norm_type=2))
distill_default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000, max_keep_ckpts=2))
distill_log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
