# Distil the converged vanilla shapes Faster R-CNN-R18 (configs/shapes/faster-rcnn_r18_fpn_24e_shapes.py)
# into its CompConv128 twin from the training images without labels: the recipe of
# faster-rcnn_compconv128-r18_fpn_distill-r18_shapes.py (300 block-wise + 100 chained
# iterations of 8 images) with the converged teacher. Fine-tune the result with
# faster-rcnn_compconv128-r18_fpn_distill-r18-24e-ft-8e-kd_shapes.py.
_base_ = './faster-rcnn_compconv128-r18_fpn_distill-r18_shapes.py'

model = dict(teacher_ckpt='work_dirs/faster-rcnn_r18_fpn_24e_shapes/epoch_24.pth')
