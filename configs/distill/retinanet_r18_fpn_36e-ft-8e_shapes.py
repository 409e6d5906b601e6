# The converged vanilla shapes RetinaNet-R18 (configs/shapes/retinanet_r18_fpn_36e_shapes.py)
# trained 8 more epochs (the fine-tune schedule of retinanet_r18_fpn_ft-8e_shapes.py): the check
# that the teacher has converged (it adds less than 0.5), and the control of its students'
# 8-epoch fine-tunes.
_base_ = './retinanet_r18_fpn_ft-8e_shapes.py'

load_from = 'work_dirs/retinanet_r18_fpn_36e_shapes/epoch_36.pth'
train_cfg = dict(val_interval=4)
