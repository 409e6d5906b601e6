"""Analytic complexity of CompConv layers (spec §4)."""
from __future__ import annotations

from typing import Sequence

import torch.nn as nn

from .compconv import CompConv


def compconv_params(module: CompConv) -> int:
    """Parameter count of a CompConv: the MACs per output pixel plus the bias.

    Example:
        >>> compconv_params(CompConv(256, 256, 3, padding=1, bias=False))
        166392
    """
    bias = module.out_channels if module.bias is not None else 0
    return module.plan.macs_per_pixel(module.kernel_size[0], module.tail_type) + bias


def compconv_macs(module: CompConv, output_size: Sequence[int]) -> int:
    """Multiply-accumulates of the convolutions of a CompConv for one image.

    Args:
        module: the CompConv.
        output_size: (H_out, W_out) of its output.

    Example:
        >>> compconv_macs(CompConv(64, 64, 3, padding=1), (1, 1))
        18720
    """
    h, w = output_size
    return h * w * module.plan.macs_per_pixel(module.kernel_size[0], module.tail_type)


def conv2d_macs(module: nn.Conv2d, output_size: Sequence[int]) -> int:
    """Multiply-accumulates of a plain ``nn.Conv2d`` for one image (bias not counted)."""
    h, w = output_size
    kh, kw = module.kernel_size
    return h * w * kh * kw * module.in_channels * module.out_channels // module.groups


def conv_macs(module: nn.Module, output_size: Sequence[int]) -> int:
    """MACs of a CompConv or an ``nn.Conv2d``."""
    if isinstance(module, CompConv):
        return compconv_macs(module, output_size)
    if isinstance(module, nn.Conv2d):
        return conv2d_macs(module, output_size)
    raise TypeError(f'conv_macs takes a CompConv or nn.Conv2d, got {type(module).__name__}')
