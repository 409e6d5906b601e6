"""CompConv necks."""
from .compconv_fpn import CompConvFPN, CompConvPAFPN

__all__ = ['CompConvFPN', 'CompConvPAFPN']
