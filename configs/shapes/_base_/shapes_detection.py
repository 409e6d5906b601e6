# The generated "shapes" dataset (tools/dataset_converters/make_shapes.py), its schedule and
# runtime, shared by every config in configs/shapes/ so that CompConv and vanilla twins train
# identically. Paths are relative to the repository root; to read the data elsewhere pass
#   --cfg-options train_dataloader.dataset.data_root=DIR/ val_dataloader.dataset.data_root=DIR/
#                 test_dataloader.dataset.data_root=DIR/ val_evaluator.ann_file=DIR/... (and test_)
_base_ = 'mmdet::_base_/default_runtime.py'

custom_imports = dict(imports=['mmdet_compconv'], allow_failed_imports=False)

dataset_type = 'CocoDataset'
data_root = 'data/shapes/'
img_scale = (256, 256)
classes = ('circle', 'square', 'triangle', 'star', 'ellipse')
metainfo = dict(classes=classes,
                palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75), (255, 165, 0),
                         (145, 30, 180)])
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    # The shapes are symmetric under both flips: a cheap way to see more data.
    dict(type='RandomFlip', prob=0.5, direction=['horizontal', 'vertical']),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=1),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val.json',
    metric='bbox',
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator

# Schedule: from scratch (no pretrained weights anywhere). AdamW converges much faster here
# than SGD: the CompConv Faster R-CNN reached bbox mAP 0.104 after 6 epochs with SGD
# (lr 0.02, momentum 0.9) and 0.447 after 6 / 0.618 after 8 epochs with this AdamW.
# Validation only at the end of training.
max_epochs = 8
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=200),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[7], gamma=0.1),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=4)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1))
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)
randomness = dict(seed=0)
