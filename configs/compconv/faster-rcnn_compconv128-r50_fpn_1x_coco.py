# Faster R-CNN + FPN with a CompConv128 ResNet-50: every conv of the residual blocks (1x1 and
# 3x3) is a CompConv with C_0 = 128; the 7x7 stem and the 1x1 downsample shortcuts stay plain.
# Everything else (data, 1x schedule, runtime) is mmdet's faster-rcnn_r50_fpn_1x_coco.py.
#
# The backbone starts from an ImageNet-pretrained CompConv128 ResNet-50 that you provide:
# no public CompConv ImageNet weights exist (see README.md, "Pretrained backbones"). Make it by
# distillation from torchvision's ResNet-50 on COCO images, without labels:
# configs/distill/compconv128-r50_distill-r50-tv_8xb16-20k_coco-images.py (README.md, "From
# nothing to a trained CompConv detector"). A missing file stops training at weight
# initialisation with FileNotFoundError; without such weights, use the from-scratch config
# faster-rcnn_compconv128-r50-scratch_fpn_gn-all_6x_coco.py.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmdet_compconv'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='CompConvResNet',
        compconv_cfg=dict(type='CompConv', c0=128),
        compconv_layers=None,  # None: every block conv; ('conv2',) is 3x3-only
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/compconv128-r50_imagenet.pth')))
