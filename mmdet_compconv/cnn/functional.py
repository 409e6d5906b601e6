"""The CompConv recursion (``docs/compconv-spec.md`` §3), written once for every form.

:class:`~mmdet_compconv.cnn.CompConv` (train form), :class:`~mmdet_compconv.cnn.DeployedCompConv`
(PyTorch inference form) and :class:`~mmdet_compconv.deployment.ExportCompConv` (the form
for ONNX runtimes) differ in how they store the sub-convolutions, read the identity copies and
assemble the output, not in the recursion itself: each one calls :func:`compconv_recursion`
with its own sub-convolution and identity functions.
"""
from __future__ import annotations

from typing import Callable, List, Sequence

import torch
import torch.nn.functional as F

__all__ = ['compconv_recursion', 'strided_identity', 'cat', 'unbatched', 'is_exporting']


def strided_identity(x: torch.Tensor, start: int, width: int, stride: int) -> torch.Tensor:
    """An identity piece: input channels ``start:start+width``, average-pooled when strided.

    Spec §3.2: kernel = stride = s, ``ceil_mode=True``, ``count_include_pad=False``, so the
    copy has the size of the strided convolution's output.

    Args:
        x (torch.Tensor): the input (N, C, H, W).
        start (int): the first channel.
        width (int): the number of channels.
        stride (int): the host conv's stride.

    Returns:
        torch.Tensor: (N, width, ceil(H / stride), ceil(W / stride)).

    Example:
        >>> strided_identity(torch.ones(1, 8, 5, 5), 2, 3, 2).shape
        torch.Size([1, 3, 3, 3])
    """
    a = x[:, start:start + width]
    if stride > 1:
        a = F.avg_pool2d(a, stride, stride, ceil_mode=True, count_include_pad=False)
    return a


def compconv_recursion(
        x: torch.Tensor, depth: int, conv: Callable[[int, Sequence[torch.Tensor]], torch.Tensor],
        identity: Callable[[int, int, torch.Tensor], List[torch.Tensor]]) -> List[torch.Tensor]:
    """The pieces ``B_{d-1}, A_{d-1}, B_{d-2}, ..., A_1, B_0`` of a CompConv, in raw order.

    ``B_{d-1} = conv(0, [x])``; then for ``j = 1 .. d-1`` the identity piece
    ``A_{d-j} = identity(j, start, b)`` (``start``: its first input channel, ``b``: the last
    B, whose width and dtype the copy takes) and ``B_{d-1-j} = conv(j, [b, *A_{d-j}])``. The
    tail ``A_0`` (made from ``B_0``, the last piece) is the caller's.

    Args:
        x (torch.Tensor): the input (N, C_in, H, W).
        depth (int): d >= 1.
        conv (Callable): ``conv(j, tensors)`` runs sub-convolution ``j`` on the channel
            concatenation of ``tensors``.
        identity (Callable): ``identity(j, start, b)`` returns the identity piece as a list
            of tensors (several when a form reads it as runs of a permuted input).

    Returns:
        list[torch.Tensor]: the pieces; identity pieces contribute their tensors in order.

    Example:
        >>> x = torch.rand(1, 4, 3, 3)
        >>> conv = lambda j, ts: torch.cat(list(ts), 1)[:, :1] + j
        >>> ident = lambda j, start, b: [x[:, start:start + b.shape[1]]]
        >>> [p.shape[1] for p in compconv_recursion(x, 3, conv, ident)]
        [1, 1, 1, 1, 1]
    """
    b = conv(0, [x])
    pieces, start = [b], 0
    for j in range(1, depth):
        a = identity(j, start, b)
        start += b.shape[1]
        b = conv(j, [b, *a])
        pieces += [*a, b]
    return pieces


def cat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Channel concatenation that skips the copy of a single tensor."""
    return tensors[0] if len(tensors) == 1 else torch.cat(list(tensors), 1)


def unbatched(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
              name: str) -> torch.Tensor:
    """Run a batched ``forward`` on an unbatched (C, H, W) input, as ``nn.Conv2d`` accepts it.

    Args:
        forward (Callable): the batched forward.
        x (torch.Tensor): a (C, H, W) input.
        name (str): the module's name, for the error message.

    Raises:
        ValueError: ``x`` is neither (N, C, H, W) nor (C, H, W).

    Example:
        >>> unbatched(lambda t: t * 2, torch.ones(2, 1, 1), 'm').shape
        torch.Size([2, 1, 1])
    """
    if x.dim() != 3:
        raise ValueError(f'{name} takes a (N, C, H, W) or (C, H, W) input, got shape '
                         f'{tuple(x.shape)}')
    return forward(x.unsqueeze(0)).squeeze(0)


def is_exporting() -> bool:
    """Whether the current forward is being exported or traced (ONNX, torch.export, jit).

    Example:
        >>> is_exporting()
        False
    """
    # cheapest first: this runs in every DeployedCompConv forward
    return (torch.compiler.is_exporting() or torch.jit.is_tracing()
            or torch.onnx.is_in_onnx_export())
