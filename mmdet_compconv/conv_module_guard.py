"""mmcv ``ConvModule`` options that cannot wrap a CompConv, refused when the module is built.

Three options of mmcv's ``ConvModule`` assume a conv with one ``weight``; with
``conv_cfg=dict(type='CompConv')`` they fail far from their cause (a ``KeyError: 'weight'``,
a crash at the first validation, or a CompConv error about ``padding=0`` the user never
passed). Importing this module (``import mmdet_compconv`` does) wraps ``ConvModule.__init__``
and ``ConvModule.turn_on_efficient_conv_bn_eval`` so that they raise a ``ValueError`` naming
the option instead; every other ConvModule is built exactly as before.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Optional

from mmcv.cnn import ConvModule
from mmengine.registry import MODELS

from .compconv import CompConv

__all__ = ['builds_compconv', 'check_conv_module_options', 'install']


def builds_compconv(conv_cfg: Optional[dict]) -> bool:
    """Whether ``build_conv_layer(conv_cfg, ...)`` builds a CompConv (or a subclass).

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


def install() -> None:
    """Wrap ``ConvModule.__init__`` and ``turn_on_efficient_conv_bn_eval`` with the checks.

    Idempotent; runs when this module is imported.

    Example:
        >>> from mmcv.cnn import ConvModule
        >>> install()
        >>> ConvModule(8, 8, 3, padding=1, conv_cfg=dict(type='CompConv'),
        ...            padding_mode='reflect')
        Traceback (most recent call last):
        ...
        ValueError: ConvModule(padding_mode='reflect') cannot wrap a CompConv: ...
    """
    if getattr(ConvModule.__init__, '_compconv_checked', False):
        return
    init, turn_on = ConvModule.__init__, ConvModule.turn_on_efficient_conv_bn_eval
    signature = inspect.signature(init)

    @functools.wraps(init)
    def checked_init(self: ConvModule, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        check_conv_module_options(a['conv_cfg'], a['with_spectral_norm'], a['padding_mode'],
                                  a['efficient_conv_bn_eval'])
        init(self, *args, **kwargs)

    @functools.wraps(turn_on)
    def checked_turn_on(self: ConvModule, efficient_conv_bn_eval: bool = True) -> None:
        if efficient_conv_bn_eval and isinstance(getattr(self, 'conv', None), CompConv):
            check_conv_module_options(dict(type=CompConv), efficient_conv_bn_eval=True)
        turn_on(self, efficient_conv_bn_eval)

    checked_init._compconv_checked = True
    ConvModule.__init__ = checked_init
    ConvModule.turn_on_efficient_conv_bn_eval = checked_turn_on


install()
