"""The PyTorch inference form of a CompConv: BatchNorm folded, concatenation and shuffle fused.

A trained :class:`~mmdet_compconv.cnn.CompConv` followed by a BatchNorm computes
``BN(shuffle(cat(B_{d-1}, A_{d-1}, ..., B_0, A_0)) + bias)``. Every piece but A_0 is also read
raw by a later sub-convolution, so BN cannot be folded into the convolutions that make them
without dividing by gamma (unsafe for the near-zero gammas of trained networks). Instead
:class:`DeployedCompConv` preallocates the output in the input's memory format and writes each
piece straight into its shuffled channel slots with ``addcmul(shift, piece, scale)``: one pass
replaces the concatenation, the shuffle gather, the bias add and the BatchNorm. A_0, read by
no one, gets BN folded into the tail convolution. Depth 0 folds into one plain convolution.

While a model is exported or traced, exporters drop ``out=`` writes (wrong outputs, or an
``IndexError`` inside the TorchScript exporter), so the pieces are then joined by one Concat
and put in the shuffled order by one Gather instead.
"""
from __future__ import annotations

from typing import Callable, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from .functional import cat, compconv_recursion, is_exporting, strided_identity, unbatched
from .fusion import norm_affine
from .plan import index_runs, invert_permutation

__all__ = ['DeployedCompConv']


class DeployedCompConv(nn.Module):
    """A CompConv (and the BatchNorm after it) in a faster, equivalent inference form.

    Args:
        conv (CompConv): the trained CompConv, in its train form.
        norm (_BatchNorm, optional): the BatchNorm that consumes its output. Default: None.

    Raises:
        ValueError: ``conv`` is already deployed, or ``norm`` is not an eval-foldable
            BatchNorm of ``conv.out_channels`` features (see
            :func:`~mmdet_compconv.cnn.fusion.foldable`).

    Example:
        >>> from mmdet_compconv import CompConv
        >>> conv, bn = CompConv(64, 64, 3, padding=1), torch.nn.BatchNorm2d(64)
        >>> seq = torch.nn.Sequential(conv, bn).eval()
        >>> x = torch.rand(1, 64, 8, 8)
        >>> torch.allclose(DeployedCompConv(conv, bn)(x), seq(x), atol=1e-5)
        True
    """

    def __init__(self, conv: nn.Module, norm: Optional[_BatchNorm] = None) -> None:
        super().__init__()
        if conv.deployed is not None:
            raise ValueError('this CompConv was already switched to deploy; its inference form '
                             'is conv.deployed')
        self.plan, self.stride = conv.plan, conv.stride
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.padding, self.dilation = conv.kernel_size, conv.padding, conv.dilation
        scale, shift = norm_affine(conv, norm)
        plan = conv.plan
        if plan.depth == 0:
            w = conv.convs[0].weight.detach() * scale.view(-1, 1, 1, 1)
            self.weights = nn.ParameterList([nn.Parameter(w, requires_grad=False)])
            self.register_buffer('tail_bias', shift)
            return
        # Output channel o takes raw channel order[o] of cat(...); raw r lands on dest[r].
        order = conv.shuffle_index if conv.with_shuffle else torch.arange(conv.out_channels)
        dest = invert_permutation(order)
        self.register_buffer('order', order.clone(), persistent=False)
        self.register_buffer('scale', scale[dest].view(1, -1, 1, 1))
        self.register_buffer('shift', shift[dest].view(1, -1, 1, 1))
        weights = [c.weight.detach().clone() for c in conv.convs]
        # The tail reads all of B_0 (a channel slice of a channels_last tensor would be
        # copied first): zero weights for the e trimmed channels, outputs past n ignored.
        n, e = plan.tail_channels, plan.overflow
        tail_w = conv.tail.weight.detach() * self.scale.flatten()[-n:].view(-1, 1, 1, 1)
        tail_b = self.shift.flatten()[-n:]
        if conv.tail.groups > 1:
            tail_w = torch.cat((tail_w, tail_w.new_zeros((e, ) + tail_w.shape[1:])))
            tail_b = torch.cat((tail_b, tail_b.new_zeros(e)))
        else:
            tail_w = torch.cat((tail_w, tail_w.new_zeros((n, e) + tail_w.shape[2:])), 1)
        weights.append(tail_w)
        self.weights = nn.ParameterList([nn.Parameter(w, requires_grad=False) for w in weights])
        self.register_buffer('tail_bias', tail_b.clone())
        self.tail_groups = conv.tail.groups + (e if conv.tail.groups > 1 else 0)
        self.tail_padding, self.tail_dilation = conv.tail.padding, conv.tail.dilation
        # Each piece of cat(...) is written as runs of consecutive raw channels whose
        # destinations form an arithmetic progression: (raw start, raw stop, dest start, step).
        self.segments = []
        start = 0
        for width in plan.units[:-1] + (n, ):
            self.segments.append([(start + i, start + j, d0, step) for i, j, d0, step in
                                  index_runs(dest[start:start + width].tolist())])
            start += width

    def _pieces(self, x: torch.Tensor, write: Optional[Callable[[torch.Tensor, int], None]] = None
                ) -> List[torch.Tensor]:
        """The raw pieces ``B_{d-1}, A_{d-1}, ..., B_0`` and the tail (BN in its weights).

        ``write(piece, k)``, when given, is called as soon as piece ``k`` exists, so that the
        eager path stores each piece while it is still in cache.
        """
        w, s = self.weights, self.stride[0]
        write = write or (lambda piece, k: None)

        def conv(j: int, tensors) -> torch.Tensor:
            b = F.conv2d(cat(tensors), w[j], None, s if j == 0 else 1, self.padding,
                         self.dilation)
            write(b, 2 * j)
            return b

        def identity(j: int, start: int, b: torch.Tensor) -> List[torch.Tensor]:
            a = strided_identity(x, start, b.shape[1], s)
            write(a, 2 * j - 1)
            return [a]

        pieces = compconv_recursion(x, self.plan.depth, conv, identity)
        pieces.append(F.conv2d(pieces[-1], w[-1], self.tail_bias, 1, self.tail_padding,
                               self.tail_dilation, self.tail_groups))
        write(pieces[-1], len(pieces) - 1)
        return pieces

    def _write(self, out: torch.Tensor, piece: torch.Tensor, k: int, affine: bool = True) -> None:
        base = self.segments[k][0][0]
        for lo, hi, d0, step in self.segments[k]:
            dst = out[:, d0:d0 + step * (hi - lo - 1) + 1:step]
            src = piece[:, lo - base:hi - base]
            if affine:
                torch.addcmul(self.shift[:, lo:hi], src, self.scale[:, lo:hi], out=dst)
            else:
                dst.copy_(src)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            return unbatched(self.forward, x, 'DeployedCompConv')
        if x.requires_grad and torch.is_grad_enabled():
            raise RuntimeError('DeployedCompConv is an inference form and does not '
                               'backpropagate: call it under torch.no_grad() or '
                               'torch.inference_mode(), or train the CompConv model instead')
        if self.plan.depth == 0:
            return F.conv2d(x, self.weights[0], self.tail_bias, self.stride, self.padding,
                            self.dilation)
        if is_exporting():
            return self._assemble_for_export(self._pieces(x))
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        out = None
        last = len(self.segments) - 1

        def write(piece: torch.Tensor, k: int) -> None:
            nonlocal out
            if out is None:  # the output size is the first piece's (the strided conv's)
                out = torch.empty((x.shape[0], self.out_channels) + piece.shape[2:],
                                  dtype=piece.dtype, device=x.device,
                                  memory_format=torch.channels_last if channels_last
                                  else torch.contiguous_format)
            self._write(out, piece, k, affine=k < last)

        self._pieces(x, write)
        return out

    def _assemble_for_export(self, pieces: List[torch.Tensor]) -> torch.Tensor:
        """What an exporter can record: the folded BN of the raw pieces as one Mul and Add,
        the tail joined by one Concat, the shuffle as one Gather."""
        n = self.plan.tail_channels
        body = torch.cat(pieces[:-1], 1) * self.scale[:, :-n] + self.shift[:, :-n]
        tail = pieces[-1]
        if tail.shape[1] != n:  # the depthwise tail also ran on the e trimmed channels
            tail = tail[:, :n]
        return torch.cat((body, tail), 1).index_select(1, self.order)
