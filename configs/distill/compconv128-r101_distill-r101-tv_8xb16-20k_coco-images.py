# CompConv128 ResNet-101 backbone, distilled from torchvision's ImageNet ResNet-101 on COCO
# train2017 images (no labels); for configs/compconv/*compconv128-r101_*. Not run by this
# project.
_base_ = './_base_/distill_resnet_backbone_coco.py'
model = dict(
    teacher=dict(depth=101),
    teacher_ckpt='torchvision://resnet101',
    student=dict(depth=101))
