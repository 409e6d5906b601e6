"""CompConv dense heads."""
from .compconv_rpn_head import CompConvRPNHead

__all__ = ['CompConvRPNHead']
