"""mmcv ``ConvModule`` options that cannot wrap a CompConv, refused when the module is built.

Three options of mmcv's ``ConvModule`` assume a conv with one ``weight``; with
``conv_cfg=dict(type='CompConv')`` they fail far from their cause (a ``KeyError: 'weight'``,
a crash at the first validation, or a CompConv error about ``padding=0`` the user never
passed). :func:`check_conv_module_options` raises a ``ValueError`` naming the option instead;
``import mmdet_compconv`` makes ``ConvModule`` call it (:mod:`mmdet_compconv.patches`).
"""
from __future__ import annotations

import inspect
from typing import Optional

from mmengine.registry import MODELS

from .compconv import CompConv

__all__ = ['builds_compconv', 'check_conv_module_options']


def builds_compconv(conv_cfg: Optional[dict]) -> bool:
    """Whether ``build_conv_layer(conv_cfg, ...)`` builds a CompConv (or a subclass).

    Args:
        conv_cfg (dict, optional): a conv config as mmcv's ``build_conv_layer`` takes it; its
            ``type`` is a class or a name looked up, as ``build_conv_layer`` does, in
            mmengine's root ``MODELS`` registry.

    Returns:
        bool: True for a dict whose ``type`` is CompConv or a subclass; False for None, a
        dict without ``type`` or any other conv.

    Example:
        >>> builds_compconv(dict(type='CompConv')), builds_compconv(None)
        (True, False)
    """
    if not isinstance(conv_cfg, dict) or 'type' not in conv_cfg:
        return False
    layer = conv_cfg['type']
    if isinstance(layer, str):
        with MODELS.switch_scope_and_registry(None) as registry:  # as build_conv_layer looks
            layer = registry.get(layer)
    return inspect.isclass(layer) and issubclass(layer, CompConv)


def check_conv_module_options(conv_cfg: Optional[dict],
                              with_spectral_norm: bool = False,
                              padding_mode: str = 'zeros',
                              efficient_conv_bn_eval: bool = False) -> None:
    """Refuse the ConvModule options that need a single ``conv.weight`` when ``conv_cfg``
    builds a CompConv.

    The arguments are those of mmcv's ``ConvModule`` of the same names.

    Args:
        conv_cfg (dict, optional): the ConvModule's conv config; nothing is checked unless it
            builds a CompConv (:func:`builds_compconv`).
        with_spectral_norm (bool): whether the ConvModule applies spectral norm to its conv.
            Default: False.
        padding_mode (str): the ConvModule's padding mode. Default: 'zeros'.
        efficient_conv_bn_eval (bool): whether the ConvModule folds its BatchNorm into the
            conv at every eval forward. Default: False.

    Raises:
        ValueError: naming the option, for ``with_spectral_norm=True``, a ``padding_mode``
            other than ``'zeros'``, or ``efficient_conv_bn_eval=True``.

    Example:
        >>> check_conv_module_options(dict(type='CompConv'), with_spectral_norm=True)
        Traceback (most recent call last):
        ...
        ValueError: ConvModule(with_spectral_norm=True) cannot wrap a CompConv: ...
    """
    if not builds_compconv(conv_cfg):
        return
    if with_spectral_norm:
        raise ValueError(
            'ConvModule(with_spectral_norm=True) cannot wrap a CompConv: spectral norm '
            "reparametrises one conv.weight, and a CompConv has several sub-convolutions and "
            'identity-copied channels; build the ConvModule without with_spectral_norm')
    if padding_mode != 'zeros':
        raise ValueError(
            f'ConvModule(padding_mode={padding_mode!r}) cannot wrap a CompConv: the recursive '
            "sub-convolutions of a CompConv pad their own inputs with zeros ('same' padding), "
            f"and ConvModule would pad with {padding_mode!r} outside it and pass padding=0; use "
            "padding_mode='zeros'")
    if efficient_conv_bn_eval:
        raise ValueError(
            'ConvModule(efficient_conv_bn_eval=True) cannot wrap a CompConv: it folds the '
            'BatchNorm into conv.weight at every eval forward, and a CompConv has no single '
            'weight; for fast inference use mmdet_compconv.switch_to_deploy(model), which '
            'folds the BatchNorm into the CompConv once')
