# The backbone-only flow in the other direction: the teacher is the R-18 backbone of the
# converged vanilla shapes Faster R-CNN (configs/shapes/faster-rcnn_r18_fpn_24e_shapes.py), the
# student its CompConv128 twin, learning from the shapes-other training images without labels
# (other classes, other seed). The result initialises
# faster-rcnn_compconv128-r18-distill-shapes_fpn_shapes-other.py; the vanilla control is
# faster-rcnn_r18-shapes_fpn_shapes-other.py.
_base_ = './compconv128-r18_distill-r18-shapes-other_shapes-images.py'

model = dict(teacher_ckpt='work_dirs/faster-rcnn_r18_fpn_24e_shapes/epoch_24.pth')
train_dataloader = dict(dataset=dict(data_root='data/shapes-other/'))
