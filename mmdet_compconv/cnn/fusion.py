"""Folding a BatchNorm into the conv before it, and collapsing 1x1 CompConvs into dense convs.

Shared by the inference forms: :func:`~mmdet_compconv.cnn.switch_to_deploy` (PyTorch) and
:func:`~mmdet_compconv.deployment.to_export_form` (ONNX runtimes). Which norm consumes which
conv is read off the parent module's structure (:func:`consuming_norm`), never off the order in
which modules were registered (mmcv's ``fuse_conv_bn`` does the latter, see
``docs/operator.md``).
"""
from __future__ import annotations

import copy
from typing import Optional, Tuple

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ['COLLAPSE_ABOVE', 'foldable', 'check_foldable', 'norm_affine', 'collapse_pointwise',
           'collapses', 'check_collapse_above', 'consuming_norm', 'take_consuming_norm']

# Measured on a 2-thread Xeon (ResNet-50 at 800x1216, each 1x1 CompConv deployed vs collapsed):
# collapsing wins above a MAC ratio of ~0.2 (0.20, 0.23, 0.48..0.61), loses below ~0.13.
COLLAPSE_ABOVE = 0.15


def foldable(norm: nn.Module, out_channels: int) -> bool:
    """Whether ``norm`` folds into the conv before it.

    That is a BatchNorm of ``out_channels`` features whose eval form is an affine map (it keeps
    running statistics).

    Args:
        norm (nn.Module): the norm layer.
        out_channels (int): the conv's output channels.

    Returns:
        bool: whether it folds.

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


def check_foldable(conv: nn.Module, norm: Optional[nn.Module]) -> None:
    """Raise unless ``norm`` is None or :func:`foldable` into ``conv``.

    Args:
        conv (nn.Module): a conv with ``out_channels``.
        norm (nn.Module, optional): the norm after it.

    Raises:
        ValueError: naming the norm and the conv's output channels.

    Example:
        >>> check_foldable(nn.Conv2d(2, 4, 1), nn.GroupNorm(2, 4))
        Traceback (most recent call last):
        ...
        ValueError: cannot fold GroupNorm(2, 4, ...) into Conv2d with out_channels=4: ...
    """
    if norm is not None and not foldable(norm, conv.out_channels):
        raise ValueError(
            f'cannot fold {norm!r} into {type(conv).__name__} with out_channels='
            f'{conv.out_channels}: only a BatchNorm with running statistics '
            f'(track_running_stats=True) and {conv.out_channels} features folds into the conv '
            f'before it')


def norm_affine(conv: nn.Module, norm: Optional[_BatchNorm]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per output channel scale and shift of ``norm(conv(x) + bias) = scale * conv(x) + shift``.

    Args:
        conv (nn.Module): a conv (``nn.Conv2d`` or CompConv) with ``out_channels`` and an
            optional ``bias``.
        norm (_BatchNorm, optional): a :func:`foldable` BatchNorm after it, or None.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: ``scale`` and ``shift``, each of ``out_channels``.

    Raises:
        ValueError: ``norm`` does not fold (see :func:`check_foldable`).

    Example:
        >>> bn = nn.BatchNorm2d(2).eval()
        >>> bn.running_var.fill_(4.0)
        tensor([4., 4.])
        >>> scale, shift = norm_affine(nn.Conv2d(1, 2, 1, bias=False), bn)
        >>> [round(v, 3) for v in scale.tolist()], shift.tolist()
        ([0.5, 0.5], [0.0, 0.0])
    """
    check_foldable(conv, norm)
    ref = next(conv.parameters())
    scale = torch.ones(conv.out_channels, dtype=ref.dtype, device=ref.device)
    bias = getattr(conv, 'bias', None)
    shift = bias.detach().clone() if bias is not None else torch.zeros_like(scale)
    if norm is not None:
        inv_std = torch.rsqrt(norm.running_var + norm.eps)
        gamma = norm.weight.detach() if norm.affine else torch.ones_like(inv_std)
        beta = norm.bias.detach() if norm.affine else torch.zeros_like(inv_std)
        scale = gamma * inv_std
        shift = (shift - norm.running_mean) * scale + beta
    return scale, shift


def collapse_pointwise(conv: nn.Module, norm: Optional[_BatchNorm] = None) -> nn.Conv2d:
    """The dense 1x1 convolution equal to a stride-1 1x1 CompConv (and its BatchNorm).

    With k = 1 and stride 1 every part of a CompConv (sub-convs, identity copies, tail,
    shuffle, bias, BN) maps each pixel's channels linearly, so the whole is one matrix. It is
    read off the module itself: ``f(I) - f(0)`` in float64.

    Args:
        conv (CompConv): a 1x1, stride-1 CompConv in its train form.
        norm (_BatchNorm, optional): a :func:`foldable` BatchNorm after it. Default: None.

    Returns:
        nn.Conv2d: the dense conv (with bias), not requiring grad.

    Raises:
        ValueError: ``conv`` is not 1x1 with stride 1, or ``norm`` does not fold.

    Example:
        >>> from mmdet_compconv import CompConv
        >>> conv = CompConv(256, 64, 1).eval()
        >>> dense = collapse_pointwise(conv)
        >>> x = torch.rand(1, 256, 4, 4)
        >>> torch.allclose(dense(x), conv(x), atol=1e-5)
        True
    """
    if conv.kernel_size != (1, 1) or conv.stride != (1, 1):
        raise ValueError(f'only a 1x1, stride-1 CompConv collapses into a dense conv, got '
                         f'kernel_size={conv.kernel_size}, stride={conv.stride}')
    check_foldable(conv, norm)
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


def check_collapse_above(collapse_above: Optional[float]) -> None:
    """Raise unless ``collapse_above`` is None or a fraction in [0, 1).

    Raises:
        ValueError: naming the value.

    Example:
        >>> check_collapse_above(1.5)
        Traceback (most recent call last):
        ...
        ValueError: collapse_above must be None or a fraction in [0, 1), got 1.5
    """
    if collapse_above is not None and (isinstance(collapse_above, bool) or
                                       not isinstance(collapse_above, (int, float))
                                       or not 0 <= collapse_above < 1):
        raise ValueError(f'collapse_above must be None or a fraction in [0, 1), '
                         f'got {collapse_above!r}')


def collapses(conv: nn.Module, collapse_above: Optional[float] = COLLAPSE_ABOVE) -> bool:
    """Whether an inference form turns ``conv`` into a dense conv.

    That is a stride-1 1x1 CompConv whose MACs exceed ``collapse_above`` of the dense conv's.

    Args:
        conv (CompConv): the CompConv.
        collapse_above (float, optional): the MAC fraction; None never collapses.
            Default: :data:`COLLAPSE_ABOVE`.

    Returns:
        bool: whether it collapses.

    Example:
        >>> from mmdet_compconv import CompConv
        >>> collapses(CompConv(64, 256, 1)), collapses(CompConv(1024, 256, 1))
        (True, False)
    """
    if collapse_above is None or conv.kernel_size != (1, 1) or conv.stride != (1, 1):
        return False
    macs = conv.plan.macs_per_pixel(1, conv.tail_type)
    return macs > collapse_above * conv.in_channels * conv.out_channels


def consuming_norm(parent: nn.Module, name: str) -> Optional[str]:
    """The name of the child of ``parent`` that normalises the output of its child ``name``.

    Only when the parent's structure says so. Known structures: mmcv's ``ConvModule`` (its
    ``order`` has the norm right after the conv; it registers ``conv`` before the norm
    whatever the order), ``nn.Sequential`` (the next child), mmdet's ResNet blocks
    (``convN`` -> ``normN``) and ResNet stem (``conv1`` -> ``norm1``). In any other parent,
    registration order says nothing about data flow, so no norm is named.

    Args:
        parent (nn.Module): the parent module.
        name (str): the name of a conv child.

    Returns:
        str or None: the norm child's name.

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
    """The :func:`consuming_norm` of ``parent``'s conv ``name`` when it folds into it.

    It is replaced in ``parent`` by ``nn.Identity`` (the caller folds it).

    Args:
        parent (nn.Module): the parent module.
        name (str): the name of a conv child.

    Returns:
        nn.Module or None: the norm taken out, or None (nothing changed).

    Example:
        >>> seq = nn.Sequential(nn.Conv2d(2, 4, 1), nn.BatchNorm2d(4))
        >>> type(take_consuming_norm(seq, '0')).__name__, type(seq[1]).__name__
        ('BatchNorm2d', 'Identity')
    """
    norm_name = consuming_norm(parent, name)
    norm = parent._modules.get(norm_name) if norm_name is not None else None
    if norm is None or not foldable(norm, parent._modules[name].out_channels):
        return None
    parent._modules[norm_name] = nn.Identity()
    return norm
