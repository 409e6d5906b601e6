# The backbone-only flow onto images of other statistics: the teacher is the vanilla R-18 of
# configs/shapes/faster-rcnn_r18_fpn_shapes-other.py, the student its CompConv128 twin, learning
# from the shapes-textured training images without labels (textured backgrounds and objects,
# more clutter, smaller objects). The result initialises
# faster-rcnn_compconv128-r18-distill-shapes-other_fpn_shapes-textured.py; the vanilla control
# is faster-rcnn_r18-shapes-other_fpn_shapes-textured.py.
_base_ = './compconv128-r18_distill-r18-shapes-other_shapes-images.py'

train_dataloader = dict(dataset=dict(data_root='data/shapes-textured/'))
