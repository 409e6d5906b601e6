"""Building CompConvs in place of the convs of mmdet's modules: :func:`compconv_like`."""
from __future__ import annotations

import copy
from typing import Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmcv.cnn import build_conv_layer
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.utils import is_seq_of

DEFAULT_COMPCONV_CFG = dict(type='CompConv', c0=128)


def check_compconv_cfg(cfg: Optional[dict]) -> Optional[dict]:
    """Validate a ``compconv_cfg`` (None, or a conv config dict with a ``type``).

    Returns:
        A deep copy of ``cfg`` (None stays None).

    Raises:
        TypeError: if ``cfg`` is neither None nor a dict with a ``type`` key.
        KeyError: if ``type`` is not a registered conv layer (mmcv's build_conv_layer would
            only say 'Cannot find None in registry').

    Example:
        >>> check_compconv_cfg(dict(type='CompConv', c0=64))
        {'type': 'CompConv', 'c0': 64}
    """
    if cfg is not None and not (isinstance(cfg, dict) and 'type' in cfg):
        raise TypeError(f"compconv_cfg must be None or a dict with a 'type', e.g. "
                        f"dict(type='CompConv', c0=128); got {cfg!r}")
    if cfg is not None and isinstance(cfg['type'], str):
        with ROOT_MODELS.switch_scope_and_registry(None) as registry:
            if registry.get(cfg['type']) is None:
                raise KeyError(f"compconv_cfg type {cfg['type']!r} is not a registered conv layer "
                               f'(registry scope {registry.scope!r})')
    return copy.deepcopy(cfg)


def names_tuple(names: Optional[Union[str, Sequence[str]]],
                argument: str) -> Optional[Tuple[str, ...]]:
    """A sequence of names as a tuple; a single string is one name (not its characters).

    Raises:
        TypeError: ``names`` is neither None, a string nor a sequence of strings.

    Example:
        >>> names_tuple('conv2', 'compconv_layers'), names_tuple(['conv1', 'conv3'], 'x')
        (('conv2',), ('conv1', 'conv3'))
    """
    if names is None:
        return None
    if isinstance(names, str):
        return (names, )
    if not is_seq_of(names, str):
        raise TypeError(f'{argument} must be None, a name or a sequence of names, '
                        f'got {names!r}')
    return tuple(names)


def compconv_like(conv: nn.Module, cfg: dict) -> nn.Module:
    """Build a conv from ``cfg`` (e.g. a CompConv) with the geometry of ``conv``.

    in/out channels, kernel size, stride, padding, dilation, groups and the presence of a bias
    are copied, not the weights: the new conv has its own initialisation.

    Args:
        conv (nn.Module): the conv whose geometry is copied, e.g. an ``nn.Conv2d`` (any
            module with ``in_channels``, ``out_channels``, ``kernel_size``, ``stride``,
            ``padding``, ``dilation``, ``groups`` and an optional ``bias``).
        cfg (dict): the conv config for mmcv's ``build_conv_layer``, e.g.
            ``dict(type='CompConv', c0=128)``.

    Returns:
        nn.Module: the new conv.

    Raises:
        ValueError: from CompConv, for what it cannot express (groups > 1, padding that is
            not "same", even kernels).

    Example:
        >>> import torch.nn as nn
        >>> new = compconv_like(nn.Conv2d(256, 256, 3, 2, 1, bias=False), dict(type='CompConv'))
        >>> type(new).__name__, new.stride, new.depth, new.bias is None
        ('CompConv', (2, 2), 2, True)
    """
    return build_conv_layer(
        cfg,
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=getattr(conv, 'bias', None) is not None)
