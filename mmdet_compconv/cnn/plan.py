"""The channel plan of a CompConv (``docs/compconv-spec.md`` §2) and its index helpers.

Pure arithmetic on channel counts and channel orders: the modules of this package
(:class:`~mmdet_compconv.cnn.CompConv` and its inference forms) read their structure from a
:class:`CompConvPlan` and reorder channels with :func:`shuffle_permutation`,
:func:`invert_permutation` and :func:`index_runs`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch

__all__ = ['MAX_DEPTH', 'TAILS', 'CompConvPlan', 'adaptive_depth', 'plan_channels',
           'shuffle_permutation', 'invert_permutation', 'index_runs', 'is_int']

TAILS = ('depthwise', 'pointwise', 'full')
MAX_DEPTH = 3


@dataclass(frozen=True)
class CompConvPlan:
    """The channel plan of one CompConv (spec §2).

    A frozen dataclass; each argument is kept as the attribute of the same name. The
    constructor does not validate: :func:`plan_channels` builds valid plans, and
    :meth:`problem` says what is wrong with another one.

    Args:
        in_channels (int): C_in, the input channels.
        out_channels (int): C_out, the output channels.
        depth (int): the recursive depth d (0 means a plain convolution).
        prim_channels (int): C_p, the smallest unit (``out_channels`` when ``depth == 0``).

    Example:
        >>> plan = CompConvPlan(512, 512, depth=3, prim_channels=37)
        >>> plan.units, plan.overflow, plan.tail_channels
        ((37, 37, 74, 74, 148, 148), 6, 142)
    """

    in_channels: int
    out_channels: int
    depth: int
    prim_channels: int

    @property
    def overflow(self) -> int:
        """e, the channels trimmed from the last unit A_0."""
        if self.depth == 0:
            return 0
        return 2 * (2**self.depth - 1) * self.prim_channels - self.out_channels

    @property
    def tail_channels(self) -> int:
        """n_tail = |A_0| = 2^(d-1) C_p - e."""
        if self.depth == 0:
            return 0
        return 2**(self.depth - 1) * self.prim_channels - self.overflow

    @property
    def units(self) -> tuple[int, ...]:
        """Sizes of (B_{d-1}, A_{d-1}, ..., B_0, A_0) before trimming."""
        return tuple(2**(self.depth - 1 - i) * self.prim_channels
                     for i in range(self.depth - 1, -1, -1) for _ in (0, 1))

    @property
    def identity_channels(self) -> int:
        """Input channels copied into A_{d-1}, ..., A_1."""
        return 0 if self.depth == 0 else (2**(self.depth - 1) - 1) * self.prim_channels

    def problem(self) -> Optional[str]:
        """Why this plan is invalid (spec §2, validity), or None if it is valid.

        Returns:
            str or None: the reason (too few input channels for the identity slices, or an
            empty A_0), or None.
        """
        if self.depth == 0:
            return None
        if self.in_channels < self.identity_channels:
            return (f'in_channels={self.in_channels} < (2^(d-1) - 1) * C_p = '
                    f'{self.identity_channels} needed by the identity slices')
        if self.tail_channels < 1:
            return (f'the overflow e={self.overflow} would leave A_0 empty '
                    f'(2^(d-1) * C_p = {2**(self.depth - 1) * self.prim_channels})')
        return None

    def macs_per_pixel(self, kernel_size: int, tail: str = 'depthwise') -> int:
        """Multiply-accumulates per output pixel (spec §4, Eq. 7 and 8).

        Also the weight count, since every weight is used once per output pixel.

        Args:
            kernel_size (int): k of the k x k sub-convolutions.
            tail (str): the tail type of :class:`~mmdet_compconv.cnn.CompConv`.
                Default: 'depthwise'.

        Returns:
            int: the MACs per output pixel (bias not counted).
        """
        k2 = kernel_size**2
        if self.depth == 0:
            return k2 * self.in_channels * self.out_channels
        cp, n = self.prim_channels, self.tail_channels
        body = self.in_channels * cp + sum((2**i * cp)**2 for i in range(1, self.depth))
        tail_cost = {'depthwise': k2 * n, 'pointwise': n, 'full': k2 * n * n}[tail]
        return k2 * body + tail_cost


def is_int(value) -> bool:
    """An int proper: not a bool, not a float such as 2.0 (``2.0 in range(4)`` is True)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _prim_channels(out_channels: int, depth: int, multiple: int = 1) -> int:
    if depth == 0:
        return out_channels
    return -(-math.ceil(out_channels / (2 * (2**depth - 1))) // multiple) * multiple


def adaptive_depth(in_channels: int, c0: float, max_depth: int = MAX_DEPTH) -> int:
    """d = min(floor(log2(max(1, C_in / C_0))) + 1, max_depth) (spec §2, [decision]).

    Integer arithmetic, so C_in = 2^n * C_0 lands exactly on n + 1. The depth is not checked
    against the output channels here; :func:`plan_channels` lowers it until the plan is valid.

    Args:
        in_channels (int): C_in, the input channels.
        c0 (float): C_0; a larger value gives a smaller depth.
        max_depth (int): the cap of the depth. Default: 3.

    Returns:
        int: the depth, between 1 and ``max_depth`` (0 when ``max_depth`` is 0).

    Example:
        >>> [adaptive_depth(c, 128) for c in (64, 128, 255, 256, 512, 2048)]
        [1, 1, 1, 2, 3, 3]
    """
    n = 0
    while n + 1 < max_depth and c0 * 2**(n + 1) <= in_channels:
        n += 1
    return min(n + 1, max_depth)


def plan_channels(in_channels: int,
                  out_channels: int,
                  c0: float = 128,
                  depth: Optional[int] = None,
                  max_depth: int = MAX_DEPTH,
                  prim_multiple: int = 1) -> CompConvPlan:
    """Choose the depth and smallest unit of a CompConv (spec §2).

    Args:
        in_channels (int): C_in, the input channels (a positive int).
        out_channels (int): C_out, the output channels (a positive int).
        c0 (float): C_0 of :func:`adaptive_depth`; a larger value gives a smaller adaptive
            depth. Only used when ``depth`` is None, but always checked. Default: 128.
        depth (int, optional): an explicit depth 0..3, or None for the adaptive depth, which
            is lowered until the plan is valid. Default: None.
        max_depth (int): the cap of the adaptive depth, 0..3. Default: 3.
        prim_multiple (int): round C_p up to a multiple of this (an option outside the spec,
            e.g. the SIMD block width 8 or 16 of CPU runtimes; the overflow e grows and is
            trimmed as usual). 1 is the spec's C_p. Default: 1.

    Returns:
        CompConvPlan: the plan, valid (:meth:`CompConvPlan.problem` is None).

    Raises:
        ValueError: for non-positive or non-integer channels, a c0 that is not a finite
            number > 0, a depth or max_depth outside 0..3, a prim_multiple < 1, or an
            explicit depth that does not fit the channels.

    Example:
        >>> p = plan_channels(512, 512)
        >>> p.depth, p.prim_channels, p.overflow, p.tail_channels
        (3, 37, 6, 142)
        >>> p = plan_channels(512, 512, prim_multiple=16)
        >>> p.depth, p.prim_channels, p.overflow, p.tail_channels
        (3, 48, 160, 32)
    """
    for name, value in (('in_channels', in_channels), ('out_channels', out_channels)):
        if not is_int(value) or value < 1:
            raise ValueError(f'CompConv needs a positive integer {name}, got {value!r}')
    if (isinstance(c0, bool) or not isinstance(c0, (int, float)) or not c0 > 0
            or not math.isfinite(c0)):
        raise ValueError(f'CompConv needs a finite c0 > 0, got c0={c0!r}')
    if not is_int(max_depth) or max_depth not in range(MAX_DEPTH + 1):
        raise ValueError(f'CompConv needs an integer max_depth in 0..{MAX_DEPTH}, '
                         f'got max_depth={max_depth!r}')
    if not is_int(prim_multiple) or prim_multiple < 1:
        raise ValueError(f'CompConv needs a positive integer prim_multiple, got {prim_multiple!r}')
    if depth is not None:
        if not is_int(depth) or depth not in range(MAX_DEPTH + 1):
            raise ValueError(f'CompConv needs an integer depth in 0..{MAX_DEPTH} or None, '
                             f'got depth={depth!r}')
        plan = CompConvPlan(in_channels, out_channels, depth,
                            _prim_channels(out_channels, depth, prim_multiple))
        problem = plan.problem()
        if problem:
            raise ValueError(f'CompConv depth={depth} does not fit in_channels={in_channels}, '
                             f'out_channels={out_channels} (C_p={plan.prim_channels}): {problem}')
        return plan
    d = adaptive_depth(in_channels, c0, max_depth)
    while True:
        plan = CompConvPlan(in_channels, out_channels, d,
                            _prim_channels(out_channels, d, prim_multiple))
        if plan.problem() is None:
            return plan
        d -= 1



def shuffle_permutation(channels: int) -> torch.Tensor:
    """Channel shuffle with 2 groups as a gather index (spec §3.5, [decision]).

    Output channel 2m takes channel m, output channel 2m+1 takes channel h+m, with
    h = ceil(C/2); for even C this is ``view(2, C/2).transpose``.

    Args:
        channels (int): C, the number of channels.

    Returns:
        torch.Tensor: a long tensor of C indices: shuffled channel ``i`` is channel
        ``index[i]`` (``y.index_select(1, index)``).

    Example:
        >>> shuffle_permutation(5).tolist()
        [0, 3, 1, 4, 2]
    """
    half = (channels + 1) // 2
    index = torch.empty(channels, dtype=torch.long)
    index[0::2] = torch.arange(half)
    index[1::2] = torch.arange(half, channels)
    return index


def invert_permutation(perm: torch.Tensor) -> torch.Tensor:
    """The inverse of a permutation: ``inv[perm[i]] = i``.

    Args:
        perm (torch.Tensor): a permutation of ``0..n-1`` (long).

    Returns:
        torch.Tensor: its inverse, on the same device.

    Example:
        >>> invert_permutation(torch.tensor([2, 0, 1])).tolist()
        [1, 2, 0]
    """
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(len(perm), device=perm.device)
    return inv


def index_runs(values: Sequence[int], unit_step: bool = False) -> List[Tuple[int, int, int, int]]:
    """Split ``values`` into maximal runs that are increasing arithmetic progressions.

    A channel-order index written as runs becomes a few strided slices instead of a gather.

    Args:
        values (Sequence[int]): the indices.
        unit_step (bool): only runs of consecutive values (step 1), e.g. plain slices.
            Default: False.

    Returns:
        list[tuple[int, int, int, int]]: ``(i, j, values[i], step)`` for each run
        ``values[i:j]``, in order.

    Example:
        >>> index_runs([0, 2, 4, 5, 6, 1])
        [(0, 3, 0, 2), (3, 5, 5, 1), (5, 6, 1, 1)]
        >>> index_runs([0, 2, 4, 5, 6], unit_step=True)
        [(0, 1, 0, 1), (1, 2, 2, 1), (2, 5, 4, 1)]
    """
    runs, i = [], 0
    while i < len(values):
        j = i + 1
        step = values[j] - values[i] if j < len(values) else 1
        if unit_step or step < 1:
            step = 1
        while j < len(values) and values[j] - values[j - 1] == step:
            j += 1
        runs.append((i, j, values[i], step))
        i = j
    return runs
