# RetinaNet + FPN with a CompConv128 ResNet-50: every conv of the residual blocks is a
# CompConv with C_0 = 128; stem and shortcuts stay plain. Everything else is mmdet's
# retinanet_r50_fpn_1x_coco.py. Needs the ImageNet-pretrained CompConv128 ResNet-50 at the
# path below (see README.md); a missing file is a FileNotFoundError when training starts.
# Make it with configs/distill/compconv128-r50_distill-r50-tv_8xb16-20k_coco-images.py.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmdet_compconv'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='CompConvResNet',
        compconv_cfg=dict(type='CompConv', c0=128),
        compconv_layers=None,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/compconv128-r50_imagenet.pth')))
