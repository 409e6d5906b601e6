# CompConv128 ResNet-50 backbone (every block conv a CompConv), distilled from torchvision's
# ImageNet ResNet-50 on the COCO train2017 images without labels. Produces the backbone
# checkpoint of configs/compconv/*compconv128-r50_* (see configs/compconv/README.md, "From
# nothing to a trained CompConv detector"). Not run by this project.
_base_ = './_base_/distill_resnet_backbone_coco.py'
