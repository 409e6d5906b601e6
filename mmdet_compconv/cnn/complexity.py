"""Complexity of CompConv layers and models: analytic (spec §4) and counted."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from .compconv import CompConv

__all__ = ['compconv_params', 'compconv_macs', 'dense_macs', 'conv_macs', 'ConvLayer',
           'conv_layers', 'count_macs']


def compconv_params(module: CompConv) -> int:
    """Parameter count of a CompConv: the MACs per output pixel plus the bias.

    Every weight is used once per output pixel, so the weight count is the plan's MACs per
    pixel (spec §4).

    Args:
        module (CompConv): the CompConv, in its train form (a switched one has dropped its
            bias).

    Returns:
        int: the number of parameters (weights and bias).

    Example:
        >>> compconv_params(CompConv(256, 256, 3, padding=1, bias=False))
        166392
    """
    bias = module.out_channels if module.bias is not None else 0
    return module.plan.macs_per_pixel(module.kernel_size[0], module.tail_type) + bias


def compconv_macs(module: CompConv, output_size: Sequence[int]) -> int:
    """Multiply-accumulates of the convolutions of a CompConv for one image.

    Analytic (spec §4): the sub-convolutions and the tail; the identity copies, their
    average pooling and the bias cost no MACs.

    Args:
        module (CompConv): the CompConv.
        output_size (Sequence[int]): (H_out, W_out) of its output.

    Returns:
        int: the MACs.

    Example:
        >>> compconv_macs(CompConv(64, 64, 3, padding=1), (1, 1))
        18720
    """
    h, w = output_size
    return h * w * module.plan.macs_per_pixel(module.kernel_size[0], module.tail_type)


def dense_macs(conv: nn.Module, output_size: Sequence[int]) -> int:
    """Multiply-accumulates for one image of a plain convolution with the geometry of ``conv``.

    Args:
        conv (nn.Module): any conv with ``in_channels``, ``out_channels``, ``kernel_size`` and
            ``groups`` (``nn.Conv2d``, or a CompConv for the dense conv it replaces).
        output_size (Sequence[int]): (H_out, W_out).

    Returns:
        int: the MACs (bias not counted).

    Example:
        >>> dense_macs(nn.Conv2d(64, 64, 3, groups=2), (2, 2))
        73728
    """
    h, w = output_size
    kh, kw = conv.kernel_size
    return h * w * kh * kw * conv.in_channels * conv.out_channels // conv.groups


def conv_macs(module: nn.Module, output_size: Sequence[int]) -> int:
    """MACs for one image of a CompConv (:func:`compconv_macs`) or an ``nn.Conv2d``
    (:func:`dense_macs`).

    Args:
        module (nn.Module): a CompConv or an ``nn.Conv2d``.
        output_size (Sequence[int]): (H_out, W_out) of its output.

    Returns:
        int: the MACs (bias not counted).

    Raises:
        TypeError: ``module`` is neither.

    Example:
        >>> conv_macs(nn.Conv2d(64, 64, 3), (1, 1))
        36864
        >>> conv_macs(CompConv(64, 64, 3, padding=1), (1, 1))
        18720
    """
    if isinstance(module, CompConv):
        return compconv_macs(module, output_size)
    if isinstance(module, nn.Conv2d):
        return dense_macs(module, output_size)
    raise TypeError(f'conv_macs takes a CompConv or nn.Conv2d, got {type(module).__name__}')


@dataclass
class ConvLayer:
    """One convolution call of a model, as :func:`conv_layers` lists it.

    A dataclass; each argument is kept as the attribute of the same name.

    Args:
        name (str): the module's name in ``model.named_modules()`` (``''`` for the model
            itself).
        module (nn.Module): the CompConv or ``nn.Conv2d``.
        out_size (tuple[int, int]): (H_out, W_out) of the output of this call.
    """

    name: str
    module: nn.Module
    out_size: Tuple[int, int]

    @property
    def macs(self) -> int:
        """Analytic MACs of this layer for one image."""
        return conv_macs(self.module, self.out_size)

    @property
    def vanilla_macs(self) -> int:
        """MACs of a plain convolution of the same geometry."""
        return dense_macs(self.module, self.out_size)


def conv_layers(model: nn.Module, inputs) -> List[ConvLayer]:
    """Run ``model(inputs)`` and list its convolution calls in call order.

    A CompConv is one layer (its sub-convolutions are not listed); other ``nn.Conv2d``
    modules are listed as they are. A conv called several times (a head shared by the FPN
    levels) is listed once per call. Works on the meta device.

    Args:
        model (nn.Module): the model, called once as ``model(inputs)`` under
            ``torch.no_grad()``.
        inputs (Any): its forward's one argument, e.g. a (N, C, H, W) tensor (a meta tensor
            with a model built on the meta device).

    Returns:
        list[ConvLayer]: the calls, in call order.

    Example:
        >>> import torch, torch.nn as nn
        >>> from mmdet_compconv import CompConv
        >>> model = nn.Sequential(nn.Conv2d(3, 64, 3, 2, 1), CompConv(64, 64, 3, padding=1))
        >>> [(c.name, c.out_size, c.macs) for c in conv_layers(model, torch.rand(1, 3, 8, 8))]
        [('0', (4, 4), 27648), ('1', (4, 4), 299520)]
    """
    found: List[ConvLayer] = []
    compconvs = [n for n, m in model.named_modules() if isinstance(m, CompConv)]
    hooks = []
    for name, m in model.named_modules():
        # strictly below a CompConv; the model itself may be one (its name is '')
        inside = any(name != c and (c == '' or name.startswith(c + '.')) for c in compconvs)
        if isinstance(m, (CompConv, nn.Conv2d)) and not inside:
            def hook(mod, args, out, name=name):
                found.append(ConvLayer(name, mod, tuple(out.shape[-2:])))
            hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for h in hooks:
            h.remove()
    return found


def count_macs(model: nn.Module, inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass: torch's ``FlopCounterMode`` total / 2.

    Every op torch has a FLOP formula for is counted (convolutions, matrix products,
    attention), element-wise ops are not. Works on the meta device.

    Args:
        model (nn.Module): the model, called once as ``model(inputs)`` under
            ``torch.no_grad()``.
        inputs (torch.Tensor): its input.

    Returns:
        int: the MACs.

    Example:
        >>> import torch, torch.nn as nn
        >>> count_macs(nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.rand(1, 3, 4, 4))
        3456
    """
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(inputs)
    return counter.get_total_flops() // 2
