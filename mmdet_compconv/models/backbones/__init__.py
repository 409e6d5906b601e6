"""CompConv backbones."""
from .compconv_resnet import (CompConvBasicBlock, CompConvBottleneck, CompConvResNet,
                              CompConvResNetV1d)

__all__ = ['CompConvBasicBlock', 'CompConvBottleneck', 'CompConvResNet', 'CompConvResNetV1d']
