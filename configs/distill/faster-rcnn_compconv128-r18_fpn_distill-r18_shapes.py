# Distil the vanilla shapes Faster R-CNN-R18 (teacher) into its CompConv128 twin (student),
# from the training images without labels. The student starts with every teacher tensor that
# fits (stem, shortcuts, norms, FPN, RPN and RoI heads); phase 1 trains each CompConv block on
# its teacher block's input and output, phase 2 the whole backbone and the FPN on the
# teacher's stage and FPN outputs. The checkpoint is an ordinary Faster R-CNN checkpoint of
# configs/shapes/faster-rcnn_compconv128-r18_fpn_shapes.py (test it with tools/test.py, or
# fine-tune it: faster-rcnn_compconv128-r18_fpn_distill-r18-ft-4e_shapes.py).
#
#   python tools/train.py configs/shapes/faster-rcnn_r18_fpn_shapes.py      # the teacher
#   python tools/train.py configs/distill/faster-rcnn_compconv128-r18_fpn_distill-r18_shapes.py
_base_ = './_base_/distill_shapes.py'

model = dict(
    type='CompConvDistiller',
    teacher='{{fileDirname}}/../shapes/faster-rcnn_r18_fpn_shapes.py',
    teacher_ckpt='work_dirs/faster-rcnn_r18_fpn_shapes/epoch_8.pth',
    student='{{fileDirname}}/../shapes/faster-rcnn_compconv128-r18_fpn_shapes.py',
    blockwise_iters={{_base_.blockwise_iters}},
    stage_loss_weight=1.0,
    neck_loss_weight=1.0)
