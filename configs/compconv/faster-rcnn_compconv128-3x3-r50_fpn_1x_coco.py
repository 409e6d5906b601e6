# Faster R-CNN + FPN with a ResNet-50 whose 3x3 block convs (conv2 of each Bottleneck) are
# CompConv128; the 1x1 convs, the stem and the shortcuts stay plain. 1x schedule.
# Needs the ImageNet-pretrained 3x3-only CompConv128 ResNet-50 (see README.md): the weights
# of the all-block-convs backbone do not fit this one. Make it by distillation from
# torchvision's ResNet-50: configs/distill/compconv128-3x3-r50_distill-r50-tv_8xb16-20k_coco-images.py.
_base_ = './faster-rcnn_compconv128-r50_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        compconv_layers=('conv2', ),
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/compconv128-3x3-r50_imagenet.pth')))
