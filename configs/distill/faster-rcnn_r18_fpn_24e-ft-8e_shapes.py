# The converged vanilla shapes Faster R-CNN-R18 (configs/shapes/faster-rcnn_r18_fpn_24e_shapes.py)
# trained 8 more epochs (the fine-tune schedule of faster-rcnn_r18_fpn_ft-8e_shapes.py: lr 5e-4,
# divided by 10 for the last epoch): the check that the teacher has converged (it adds less
# than 0.5), and the control of its students' 8-epoch fine-tunes.
_base_ = './faster-rcnn_r18_fpn_ft-8e_shapes.py'

load_from = 'work_dirs/faster-rcnn_r18_fpn_24e_shapes/epoch_24.pth'
train_cfg = dict(val_interval=4)
