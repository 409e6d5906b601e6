# Distil the converged vanilla shapes RetinaNet-R18 (configs/shapes/retinanet_r18_fpn_36e_shapes.py)
# into its CompConv128 twin from the training images without labels: the recipe of
# retinanet_compconv128-r18_fpn_distill-r18_shapes.py with the converged teacher. Fine-tune
# the result with retinanet_compconv128-r18_fpn_distill-r18-36e-ft-8e-kd_shapes.py.
_base_ = './retinanet_compconv128-r18_fpn_distill-r18_shapes.py'

model = dict(teacher_ckpt='work_dirs/retinanet_r18_fpn_36e_shapes/epoch_36.pth')
