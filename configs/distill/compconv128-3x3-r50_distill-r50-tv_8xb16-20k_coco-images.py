# CompConv128 ResNet-50 with CompConv in the 3x3 convs only, distilled from torchvision's
# ImageNet ResNet-50 on COCO train2017 images (no labels); for
# configs/compconv/faster-rcnn_compconv128-3x3-r50_fpn_1x_coco.py. Not run by this project.
_base_ = './_base_/distill_resnet_backbone_coco.py'
model = dict(student=dict(compconv_layers=('conv2', )))
