"""Inference form of CompConv: BatchNorm folded, concatenation, shuffle and norm in one pass.

A trained :class:`~mmdet_compconv.CompConv` followed by a BatchNorm computes
``BN(shuffle(cat(B_{d-1}, A_{d-1}, ..., B_0, A_0)) + bias)``. Every piece but A_0 is also read
raw by a later sub-convolution, so BN cannot be folded into the convolutions that make them
without dividing by gamma (unsafe for the near-zero gammas of trained networks). Instead
:class:`DeployedCompConv` preallocates the output in the input's memory format and writes each
piece straight into its shuffled channel slots with ``addcmul(shift, piece, scale)``: one pass
replaces the concatenation, the shuffle gather, the bias add and the BatchNorm. A_0, read by
no one, gets BN folded into the tail convolution. Depth 0 folds into one plain convolution.
"""
from __future__ import annotations

import copy
import warnings
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from .compconv import CompConv, unbatched


def foldable(norm: nn.Module, out_channels: int) -> bool:
    """Whether ``norm`` is a BatchNorm of ``out_channels`` whose eval form is an affine map
    (it keeps running statistics), so that it can be folded into the conv before it.

    Example:
        >>> foldable(nn.BatchNorm2d(8), 8), foldable(nn.BatchNorm2d(8), 16)
        (True, False)
        >>> foldable(nn.BatchNorm2d(8, track_running_stats=False), 8)
        False
        >>> foldable(nn.GroupNorm(2, 8), 8)
        False
    """
    return (isinstance(norm, _BatchNorm) and norm.track_running_stats
            and norm.running_mean is not None and norm.running_var is not None
            and norm.num_features == out_channels)


def _check_foldable(conv: CompConv, norm: Optional[nn.Module]) -> None:
    if norm is not None and not foldable(norm, conv.out_channels):
        raise ValueError(
            f'cannot fold {norm!r} into a CompConv with out_channels={conv.out_channels}: only '
            f'a BatchNorm with running statistics (track_running_stats=True) and '
            f'{conv.out_channels} features folds into the conv before it')


def _norm_affine(conv: CompConv, norm: Optional[_BatchNorm]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per output channel (after the shuffle) scale and shift of ``norm(conv(x))``."""
    _check_foldable(conv, norm)
    c = conv.out_channels
    ref = next(conv.parameters())
    scale = torch.ones(c, dtype=ref.dtype, device=ref.device)
    shift = conv.bias.detach().clone() if conv.bias is not None else torch.zeros_like(scale)
    if norm is not None:
        inv_std = torch.rsqrt(norm.running_var + norm.eps)
        gamma = norm.weight.detach() if norm.affine else torch.ones_like(inv_std)
        beta = norm.bias.detach() if norm.affine else torch.zeros_like(inv_std)
        scale = gamma * inv_std
        shift = (shift - norm.running_mean) * scale + beta
    return scale, shift


class DeployedCompConv(nn.Module):
    """A CompConv (and the BatchNorm after it) in a faster, equivalent inference form.

    Args:
        conv: the trained CompConv.
        norm: the BatchNorm that consumes its output, or None.

    Raises:
        ValueError: ``conv`` is already deployed, or ``norm`` is not an eval-foldable
            BatchNorm of ``conv.out_channels`` features (see :func:`foldable`).

    Example:
        >>> import torch
        >>> conv, bn = CompConv(64, 64, 3, padding=1), torch.nn.BatchNorm2d(64)
        >>> seq = torch.nn.Sequential(conv, bn).eval()
        >>> x = torch.rand(1, 64, 8, 8)
        >>> torch.allclose(DeployedCompConv(conv, bn)(x), seq(x), atol=1e-5)
        True
    """

    def __init__(self, conv: CompConv, norm: Optional[_BatchNorm] = None) -> None:
        super().__init__()
        if conv.deployed is not None:
            raise ValueError('this CompConv was already switched to deploy; its inference form '
                             'is conv.deployed')
        self.plan, self.stride = conv.plan, conv.stride
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.padding, self.dilation = conv.kernel_size, conv.padding, conv.dilation
        scale, shift = _norm_affine(conv, norm)
        plan = conv.plan
        if plan.depth == 0:
            w = conv.convs[0].weight.detach() * scale.view(-1, 1, 1, 1)
            self.weights = nn.ParameterList([nn.Parameter(w, requires_grad=False)])
            self.register_buffer('tail_bias', shift)
            return
        # Raw position r of cat(...) lands on output channel dest[r].
        order = conv.shuffle_index if conv.with_shuffle else torch.arange(conv.out_channels)
        dest = torch.empty_like(order)
        dest[order] = torch.arange(len(order))
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
            self.segments.append(self._runs(dest[start:start + width].tolist(), start))
            start += width

    @staticmethod
    def _runs(dests: list, offset: int) -> list:
        runs, i = [], 0
        while i < len(dests):
            j = i + 1
            step = dests[j] - dests[i] if j < len(dests) and dests[j] > dests[i] else 1
            while j < len(dests) and dests[j] - dests[j - 1] == step:
                j += 1
            runs.append((offset + i, offset + j, dests[i], step))
            i = j
        return runs

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
        w = self.weights
        if x.requires_grad and torch.is_grad_enabled():
            raise RuntimeError('DeployedCompConv is an inference form and does not '
                               'backpropagate: call it under torch.no_grad() or '
                               'torch.inference_mode(), or train the CompConv model instead')
        if is_exporting():  # exporters drop the out= writes below
            return deployed_forward_for_export(self, x)
        if self.plan.depth == 0:
            return F.conv2d(x, w[0], self.tail_bias, self.stride, self.padding, self.dilation)
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        b = F.conv2d(x, w[0], None, self.stride, self.padding, self.dilation)
        out = torch.empty((x.shape[0], self.out_channels) + b.shape[2:], dtype=b.dtype,
                          device=b.device,
                          memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        self._write(out, b, 0)
        start = 0
        for j in range(1, self.plan.depth):
            width = b.shape[1]
            a = x[:, start:start + width]
            start += width
            if self.stride[0] > 1:
                a = F.avg_pool2d(a, self.stride, self.stride, ceil_mode=True,
                                 count_include_pad=False)
            self._write(out, a, 2 * j - 1)
            b = F.conv2d(torch.cat((b, a), 1), w[j], None, 1, self.padding, self.dilation)
            self._write(out, b, 2 * j)
        tail = F.conv2d(b, w[-1], self.tail_bias, 1, self.tail_padding, self.tail_dilation,
                        self.tail_groups)
        self._write(out, tail, len(self.segments) - 1, affine=False)
        return out


def collapse_pointwise(conv: CompConv, norm: Optional[_BatchNorm] = None) -> nn.Conv2d:
    """The dense 1x1 convolution equal to a stride-1 1x1 CompConv (and its BatchNorm).

    With k = 1 and stride 1 every part of a CompConv (sub-convs, identity copies, tail,
    shuffle, bias, BN) maps each pixel's channels linearly, so the whole is one matrix. It is
    read off the module itself: ``f(I) - f(0)`` in float64.

    Raises:
        ValueError: ``conv`` is not 1x1 with stride 1, or ``norm`` is not an eval-foldable
            BatchNorm of ``conv.out_channels`` features (see :func:`foldable`).

    Example:
        >>> import torch
        >>> conv = CompConv(256, 64, 1).eval()
        >>> dense = collapse_pointwise(conv)
        >>> x = torch.rand(1, 256, 4, 4)
        >>> torch.allclose(dense(x), conv(x), atol=1e-5)
        True
    """
    if conv.kernel_size != (1, 1) or conv.stride != (1, 1):
        raise ValueError(f'only a 1x1, stride-1 CompConv collapses into a dense conv, got '
                         f'kernel_size={conv.kernel_size}, stride={conv.stride}')
    _check_foldable(conv, norm)
    ref = next(conv.parameters())
    dtype, device = ref.dtype, ref.device
    f = copy.deepcopy(nn.Sequential(conv, norm) if norm is not None else conv).double().eval()
    with torch.no_grad():
        eye = torch.eye(conv.in_channels, dtype=torch.double, device=device)
        out = f(torch.cat((eye, torch.zeros_like(eye[:1]))).view(-1, conv.in_channels, 1, 1))
    bias = out[-1, :, 0, 0]
    dense = nn.Conv2d(conv.in_channels, conv.out_channels, 1, device=device, dtype=dtype)
    dense.weight.data.copy_((out[:-1, :, 0, 0] - bias).t().reshape_as(dense.weight))
    dense.bias.data.copy_(bias)
    return dense.requires_grad_(False)


# Measured on a 2-thread Xeon (ResNet-50 at 800x1216, each 1x1 CompConv deployed vs collapsed):
# collapsing wins above a MAC ratio of ~0.2 (0.20, 0.23, 0.48..0.61), loses below ~0.13.
COLLAPSE_ABOVE = 0.15


def consuming_norm(parent: nn.Module, name: str) -> Optional[str]:
    """The name of the child of ``parent`` that normalises the output of its child ``name``
    directly, when the parent's structure says so, or None.

    Known structures: mmcv's ``ConvModule`` (its ``order`` has the norm right after the
    conv; it registers ``conv`` before the norm whatever the order), ``nn.Sequential``
    (the next child), mmdet's ResNet blocks (``convN`` -> ``normN``) and ResNet stem
    (``conv1`` -> ``norm1``). In any other parent, registration order says nothing about data
    flow, so no norm is named.

    Example:
        >>> from mmcv.cnn import ConvModule
        >>> cfg = dict(conv_cfg=dict(type='CompConv'), norm_cfg=dict(type='BN'))
        >>> consuming_norm(ConvModule(8, 8, 1, **cfg), 'conv')
        'bn'
        >>> print(consuming_norm(ConvModule(8, 8, 1, order=('norm', 'conv', 'act'), **cfg), 'conv'))
        None
    """
    from mmcv.cnn import ConvModule
    from mmdet.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
    if isinstance(parent, ConvModule):
        order = tuple(parent.order)
        if (name == 'conv' and parent.with_norm
                and order.index('norm') == order.index('conv') + 1):
            return parent.norm_name
        return None
    if isinstance(parent, nn.Sequential):
        names = list(parent._modules)
        i = names.index(name)
        return names[i + 1] if i + 1 < len(names) else None
    if isinstance(parent, (BasicBlock, Bottleneck)) and name in ('conv1', 'conv2', 'conv3'):
        return getattr(parent, f'norm{name[-1]}_name', None)
    if isinstance(parent, ResNet) and name == 'conv1' and not parent.deep_stem:
        return parent.norm1_name
    return None


def take_consuming_norm(parent: nn.Module, name: str) -> Optional[nn.Module]:
    """The :func:`consuming_norm` of ``parent``'s CompConv ``name`` when it folds into it,
    replaced in ``parent`` by ``nn.Identity`` (the caller folds it); else None."""
    norm_name = consuming_norm(parent, name)
    norm = parent._modules.get(norm_name) if norm_name is not None else None
    if norm is None or not foldable(norm, parent._modules[name].out_channels):
        return None
    parent._modules[norm_name] = nn.Identity()
    return norm


def switch_to_deploy(model: nn.Module,
                     collapse_above: Optional[float] = COLLAPSE_ABOVE) -> nn.Module:
    """Replace every CompConv in ``model`` (and the BatchNorm that consumes it) in place.

    A BatchNorm is folded into the CompConv before it when the parent's structure shows that
    it normalises that CompConv's output directly (:func:`consuming_norm`: ``ConvModule`` by its
    ``order``, ``nn.Sequential``, mmdet's ResNet blocks and stem) and it can be folded
    (:func:`foldable`); it is then replaced by ``nn.Identity``. Every other norm stays as it
    is (correct, only not fused). The result is for inference only: a model in train mode is
    put in eval mode (with a warning), and every parameter stops requiring grad.

    Args:
        model: any model containing CompConv modules.
        collapse_above: a stride-1 1x1 CompConv whose MACs exceed this fraction of its dense
            equivalent's becomes that dense conv (:func:`collapse_pointwise`): it saves too
            little compute to pay for its extra memory passes. The default, 0.15, collapses
            in a CompConv128 ResNet-50 the d <= 2 1x1 convs of layer1/2 and every expanding
            conv3, not the d = 3 reducing conv1 of layer2-4. None: keep every CompConv a
            :class:`DeployedCompConv`.

    Returns:
        The same model, in eval mode.

    Example:
        >>> import torch
        >>> from mmcv.cnn import ConvModule
        >>> m = ConvModule(64, 64, 3, padding=1, conv_cfg=dict(type='CompConv'),
        ...                norm_cfg=dict(type='BN')).eval()
        >>> x = torch.rand(1, 64, 8, 8)
        >>> y = m(x)
        >>> torch.allclose(switch_to_deploy(m)(x), y, atol=1e-5)
        True
    """
    if isinstance(model, CompConv):
        raise TypeError('switch_to_deploy replaces children in place; wrap a bare CompConv as '
                        'DeployedCompConv(conv) instead')
    _check_collapse_above(collapse_above)
    if any(m.training for m in model.modules()):
        warnings.warn(f'switch_to_deploy: {type(model).__name__} was in train mode; its '
                      f'inference form is put in eval mode (BatchNorms are folded with their '
                      f'running statistics)', stacklevel=2)
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if not isinstance(child, CompConv) or child.deployed is not None:
                continue  # a CompConv switched on its own keeps its form (and its BN)
            norm = take_consuming_norm(parent, name)
            if collapse_above is not None and collapses(child, collapse_above):
                parent._modules[name] = collapse_pointwise(child, norm)
            else:
                parent._modules[name] = DeployedCompConv(child, norm)
    return model.eval().requires_grad_(False)  # eval again: the new modules too


def _check_collapse_above(collapse_above) -> None:
    if collapse_above is not None and (isinstance(collapse_above, bool) or
                                       not isinstance(collapse_above, (int, float))
                                       or not 0 <= collapse_above < 1):
        raise ValueError(f'collapse_above must be None or a fraction in [0, 1), '
                         f'got {collapse_above!r}')


def collapses(conv: CompConv, collapse_above: float = COLLAPSE_ABOVE) -> bool:
    """Whether :func:`switch_to_deploy` turns ``conv`` into a dense conv: a stride-1 1x1
    CompConv whose MACs exceed ``collapse_above`` of the dense conv's.

    Example:
        >>> collapses(CompConv(64, 256, 1)), collapses(CompConv(1024, 256, 1))
        (True, False)
    """
    if conv.kernel_size != (1, 1) or conv.stride != (1, 1):
        return False
    macs = conv.plan.macs_per_pixel(1, conv.tail_type)
    return macs > collapse_above * conv.in_channels * conv.out_channels


# last: export.py builds on the names above
from .export import deployed_forward_for_export, is_exporting  # noqa: E402
