"""mmdet modules built on CompConv, registered in ``mmdet.registry.MODELS`` on import."""
from .backbones import CompConvBasicBlock, CompConvBottleneck, CompConvResNet, CompConvResNetV1d
from .dense_heads import CompConvRPNHead
from .distillers import CompConvDistiller
from .losses import ChannelNormMSELoss, PKDLoss, SigmoidKDLoss
from .necks import CompConvFPN, CompConvPAFPN
from .dense_detector import DenseDetector
from .utils import CompConvPlanMixin, compconv_like, compconv_plan_of, load_compconv_plan

__all__ = [
    'ChannelNormMSELoss', 'CompConvBasicBlock', 'CompConvBottleneck', 'CompConvDistiller',
    'CompConvResNet', 'CompConvResNetV1d',
    'CompConvFPN', 'CompConvPAFPN', 'CompConvRPNHead', 'DenseDetector', 'PKDLoss',
    'SigmoidKDLoss', 'compconv_like', 'CompConvPlanMixin', 'compconv_plan_of',
    'load_compconv_plan'
]
