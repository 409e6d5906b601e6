"""mmdet modules built on CompConv, registered in ``mmdet.registry.MODELS`` on import."""
from .backbones import CompConvBasicBlock, CompConvBottleneck, CompConvResNet, CompConvResNetV1d
from .dense_heads import CompConvRPNHead
from .distillers import CompConvDistiller
from .losses import ChannelNormMSELoss
from .necks import CompConvFPN, CompConvPAFPN
from .pretrained import LoadReport, load_pretrained, load_state_dict_with_report
from .utils import compconv_like

__all__ = [
    'ChannelNormMSELoss', 'CompConvBasicBlock', 'CompConvBottleneck', 'CompConvDistiller',
    'CompConvResNet', 'CompConvResNetV1d',
    'CompConvFPN', 'CompConvPAFPN', 'CompConvRPNHead', 'LoadReport', 'compconv_like',
    'load_pretrained', 'load_state_dict_with_report'
]
