"""mmdet modules built on CompConv, registered in ``mmdet.registry.MODELS`` on import."""
from .backbones import CompConvBasicBlock, CompConvBottleneck, CompConvResNet, CompConvResNetV1d
from .dense_heads import CompConvRPNHead
from .necks import CompConvFPN, CompConvPAFPN
from .utils import LoadReport, compconv_like, load_pretrained, load_state_dict_with_report

__all__ = [
    'CompConvBasicBlock', 'CompConvBottleneck', 'CompConvResNet', 'CompConvResNetV1d',
    'CompConvFPN', 'CompConvPAFPN', 'CompConvRPNHead', 'LoadReport', 'compconv_like',
    'load_pretrained', 'load_state_dict_with_report'
]
