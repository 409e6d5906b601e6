# RetinaNet + FPN with a CompConv128 ResNet-101 (every block conv a CompConv), 1x schedule.
# Needs the ImageNet-pretrained CompConv128 ResNet-101 at the path below (see README.md); make
# it with configs/distill/compconv128-r101_distill-r101-tv_8xb16-20k_coco-images.py.
_base_ = './retinanet_compconv128-r50_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/compconv128-r101_imagenet.pth')))
