# faster-rcnn_compconv128-r50_fpn_1x_coco.py with mmdet's 2x schedule (24 epochs, lr steps at
# 16 and 22), exactly as in mmdet's _base_/schedules/schedule_2x.py.
_base_ = './faster-rcnn_compconv128-r50_fpn_1x_coco.py'

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[16, 22],
        gamma=0.1)
]
