"""CompConv, the compact convolution of Zhang, Xu and Shen (CVPR 2021 Workshops).

Paper: https://arxiv.org/abs/2106.10486 (no official code). This module follows the
project's specification, ``docs/compconv-spec.md``; its section numbers are cited below.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from mmengine.utils import to_2tuple

from .deployed_compconv import DeployedCompConv
from .functional import cat, compconv_recursion, strided_identity, unbatched
from .plan import MAX_DEPTH, TAILS, plan_channels, shuffle_permutation

__all__ = ['CompConv']

IntOrPair = Union[int, Sequence[int]]


def _pair(value: IntOrPair, name: str) -> tuple:
    pair = to_2tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise ValueError(f'CompConv {name} must be an int or a pair of ints, got {value!r}')
    return pair


def _square(value: IntOrPair, name: str) -> int:
    a, b = _pair(value, name)
    if a != b or a < 1:
        raise ValueError(f'CompConv needs a square, positive {name}, got {value!r}')
    return a


@MODELS.register_module()
class CompConv(nn.Module):
    """A drop-in replacement for a ``nn.Conv2d`` (spec §3).

    The output is ``cat(B_{d-1}, A_{d-1}, ..., B_0, A_0)`` followed by a 2-group channel
    shuffle: B_{d-1} is a convolution of the input to C_p channels with the host's stride;
    each A_i (i >= 1) copies a contiguous slice of input channels (average-pooled when
    strided); B_{i-1} convolves ``cat(B_i, A_i)``; the tail A_0 is computed from B_0.
    ``depth=0`` is a plain convolution. No norm or activation is inside; a bias is one
    vector on the output.

    Args:
        in_channels (int): number of input channels, C_in.
        out_channels (int): number of output channels, C_out.
        kernel_size (int | tuple[int, int]): the kernel size k of the k x k sub-convolutions;
            odd and square.
        stride (int | tuple[int, int]): the host convolution's stride, square: B_{d-1}
            convolves with it and the identity copies are average-pooled with it. Default: 1.
        padding (int | tuple[int, int] | str): must be the "same" padding
            ``dilation * (k - 1) // 2``, or the string ``'same'`` (stride 1 only, as in
            ``nn.Conv2d``). Default: 0 (which is "same" for a 1x1 kernel only).
        dilation (int | tuple[int, int]): the host's dilation, square, used by every k x k
            sub-convolution (and a k x k tail). Default: 1.
        groups (int): must be 1: grouped convolutions are not compressed. Default: 1.
        bias (bool): add a learnable bias vector to the (shuffled) output. Default: True.
        padding_mode (str): must be ``'zeros'``. Default: 'zeros'.
        c0 (float): C_0 of the adaptive depth; a larger value gives a smaller depth (the
            paper's CompConv128 is ``c0=128``). Only used when ``depth`` is None. Default: 128.
        depth (int, optional): an explicit recursive depth 0..3 (0: a plain convolution), or
            None for the adaptive depth of :func:`plan_channels`. Default: None.
        max_depth (int): the cap of the adaptive depth, 0..3. Default: 3.
        prim_multiple (int): round C_p up to a multiple of this (see :func:`plan_channels`).
            Default: 1.
        tail (str): how A_0 is made from B_0: ``'depthwise'`` (k x k depthwise),
            ``'pointwise'`` (1 x 1 depthwise) or ``'full'`` (k x k dense). Default: 'depthwise'.
        shuffle (bool): apply the 2-group channel shuffle to the output (a depth-0 CompConv
            never shuffles). Default: True.

    Raises:
        ValueError: an even or non-square kernel, a padding that is not "same", ``'same'``
            padding with a stride, ``groups != 1``, another ``padding_mode``, an unknown
            ``tail``, or channels, ``c0``, ``depth``, ``max_depth`` or ``prim_multiple``
            that :func:`plan_channels` refuses.

    Example:
        >>> import torch
        >>> conv = CompConv(512, 512, 3, padding=1)
        >>> conv.depth, conv.prim_channels
        (3, 37)
        >>> conv(torch.rand(1, 512, 8, 8)).shape
        torch.Size([1, 512, 8, 8])
    """

    transposed = False
    groups = 1

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: IntOrPair,
                 stride: IntOrPair = 1,
                 padding: Union[IntOrPair, str] = 0,
                 dilation: IntOrPair = 1,
                 groups: int = 1,
                 bias: bool = True,
                 padding_mode: str = 'zeros',
                 *,
                 c0: float = 128,
                 depth: Optional[int] = None,
                 max_depth: int = MAX_DEPTH,
                 prim_multiple: int = 1,
                 tail: str = 'depthwise',
                 shuffle: bool = True) -> None:
        super().__init__()
        k = _square(kernel_size, 'kernel_size')
        s = _square(stride, 'stride')
        dil = _square(dilation, 'dilation')
        if k % 2 == 0:
            raise ValueError(f'CompConv needs an odd kernel_size, got {kernel_size!r}')
        same = dil * (k - 1) // 2
        if padding != 'same' and _pair(padding, 'padding') != (same, same):
            raise ValueError(f'CompConv supports only "same" padding dilation*(k-1)/2 = {same} '
                             f'for kernel_size={k}, dilation={dil}; got padding={padding!r}')
        if padding == 'same' and s != 1:
            raise ValueError(f"padding='same' needs stride 1 (as in nn.Conv2d), got stride={stride!r}")
        if groups != 1:
            raise ValueError(f'CompConv does not compress grouped convolutions: groups={groups!r}')
        if padding_mode != 'zeros':
            raise ValueError(f"CompConv supports padding_mode='zeros' only, got {padding_mode!r}")
        if tail not in TAILS:
            raise ValueError(f'CompConv tail must be one of {TAILS}, got {tail!r}')
        plan = plan_channels(in_channels, out_channels, c0, depth, max_depth, prim_multiple)

        self.plan = plan
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = (k, k), (s, s)
        self.padding, self.dilation = (same, same), (dil, dil)
        self.output_padding = (0, 0)
        self.padding_mode = padding_mode
        self.c0, self.tail_type, self.with_shuffle = c0, tail, shuffle and plan.depth > 0
        self._options = dict(c0=c0, depth=depth, max_depth=max_depth,
                             prim_multiple=prim_multiple, tail=tail, shuffle=shuffle)

        def conv(cin: int, cout: int, stride: int = 1, groups: int = 1, kernel: int = k) -> nn.Conv2d:
            pad = dil * (kernel - 1) // 2
            return nn.Conv2d(cin, cout, kernel, stride, pad, dil, groups, bias=False)

        d, cp = plan.depth, plan.prim_channels
        # convs[0]: C_in -> C_p with the host's stride; convs[j]: cat(B_i, A_i) -> B_{i-1}.
        self.convs = nn.ModuleList([conv(in_channels, cp, s)] +
                                   [conv(2**j * cp, 2**j * cp) for j in range(1, d)])
        n = plan.tail_channels
        self.tail = None if d == 0 else {
            'depthwise': lambda: conv(n, n, groups=n),
            'pointwise': lambda: conv(n, n, groups=n, kernel=1),
            'full': lambda: conv(n, n),
        }[tail]()
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer('shuffle_index', shuffle_permutation(out_channels), persistent=False)
        self.deployed: Optional[nn.Module] = None
        self.reset_parameters()

    @property
    def depth(self) -> int:
        """The recursive depth d actually used."""
        return self.plan.depth

    @property
    def prim_channels(self) -> int:
        """C_p, the smallest unit."""
        return self.plan.prim_channels

    @property
    def compconv_cfg(self) -> dict:
        """The conv config that builds this CompConv again with the host's geometry.

        ``dict(type='CompConv', c0=..., depth=..., max_depth=..., prim_multiple=..., tail=...,
        shuffle=...)``, the options it was given (``depth`` None when adaptive), JSON-ready:
        what a model's ``effective_compconv_plan()`` reports for this layer.

        Example:
            >>> CompConv(64, 64, 3, padding=1, c0=64, tail='full').compconv_cfg['tail']
            'full'
        """
        return dict(type='CompConv', **self._options)

    def reset_parameters(self) -> None:
        """Kaiming-normal (fan_out, ReLU) sub-convolutions and a zero bias, as mmcv's
        ``ConvModule`` initialises a plain convolution; called at construction.

        CompConv deliberately has no ``init_weights``: mmengine's ``BaseModule.init_weights``
        applies the host's ``init_cfg`` and then calls ``init_weights`` of each child that has
        one, which would overwrite the host's choice. Without it a CompConv is initialised like
        an ``nn.Conv2d``: by construction, then by the host's ``init_cfg``, where
        ``layer='Conv2d'`` matches its sub-convolutions (they are ``nn.Conv2d``), so an
        ``init_cfg`` written for a vanilla model initialises the CompConv model alike.
        ``layer='CompConv'`` matches the module itself, of which an initializer sees only the
        output ``bias``.
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def switch_to_deploy(self) -> 'CompConv':
        """Turn this module into its inference form in place, as RepVGG-style blocks do.

        The sub-convolutions, tail and bias give way to a
        :class:`~mmdet_compconv.cnn.DeployedCompConv` child ``deployed`` (the state dict changes
        with them: load deployed weights after switching). A BatchNorm after this module is
        not folded; :func:`mmdet_compconv.switch_to_deploy` on the parent model does that.
        Switching twice changes nothing.

        Example:
            >>> conv = CompConv(64, 64, 3, padding=1).eval()
            >>> x = torch.rand(1, 64, 8, 8)
            >>> y = conv(x)
            >>> torch.allclose(conv.switch_to_deploy()(x), y, atol=1e-5)
            True
        """
        if self.deployed is None:
            deployed = DeployedCompConv(self)
            del self.convs, self.tail
            self.bias = None
            self.deployed = deployed
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            return unbatched(self._forward, x, 'CompConv')
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deployed is not None:
            return self.deployed(x)
        if self.plan.depth == 0:
            return F.conv2d(x, self.convs[0].weight, self.bias, self.stride, self.padding,
                            self.dilation)
        stride = self.stride[0]

        def identity(j: int, start: int, b: torch.Tensor) -> list:
            # .to: under autocast the copies stay in the input's dtype while the convs' outputs
            # are cast; cat would promote the whole output back to float32
            return [strided_identity(x, start, b.shape[1], stride).to(b.dtype)]

        pieces = compconv_recursion(x, self.plan.depth, lambda j, ts: self.convs[j](cat(ts)),
                                    identity)
        pieces.append(self.tail(pieces[-1][:, :self.plan.tail_channels]))
        y = torch.cat(pieces, 1)
        if self.with_shuffle:
            n, c, h, w = y.shape
            if c % 2 == 0:  # a reshape trains faster than index_select (index_add backward)
                y = y.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
            else:
                y = y.index_select(1, self.shuffle_index)
        if self.bias is not None:
            y = y + self.bias.to(y.dtype).view(1, -1, 1, 1)
        return y

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, '
                f'stride={self.stride}, padding={self.padding}, dilation={self.dilation}, '
                f'c0={self.c0}, depth={self.depth}, prim_channels={self.prim_channels}, '
                f'tail={self.tail_type!r}, shuffle={self.with_shuffle}, bias={self.bias is not None}')

