"""The forms a model runs in, and the vanilla twin of a CompConv config.

``train`` is the model as trained (eval mode); ``deploy`` is PyTorch's fastest form
(:func:`~mmdet_compconv.cnn.switch_to_deploy`, then mmcv's ``fuse_conv_bn`` for the plain
convs); ``export`` is the form built for ONNX runtimes
(:func:`~mmdet_compconv.deployment.to_export_form`); ``hybrid`` is the export form with every
1x1 CompConv of the backbone collapsed to its dense conv (``collapse_above=0`` there) and the
neck and heads at the given ``collapse_above``: in int8 the small 1x1 sub-convolutions run far
below the dense convs' efficiency, and in bf16 the backbone's 1x1 CompConvs save little, while
the FPN / RPN CompConvs still pay (docs/deployment.md, per precision).
"""
from __future__ import annotations

import copy
from typing import Any, Optional

import torch.nn as nn

from ..cnn import switch_to_deploy
from .export_form import to_export_form

__all__ = ['FORMS', 'VANILLA_TYPES', 'model_form', 'vanilla_twin']

FORMS = ('train', 'deploy', 'export', 'hybrid')

#: The mmdet module each CompConv module of this package replaces.
VANILLA_TYPES = {
    'CompConvResNet': 'ResNet',
    'CompConvResNetV1d': 'ResNetV1d',
    'CompConvFPN': 'FPN',
    'CompConvPAFPN': 'PAFPN',
    'CompConvRPNHead': 'RPNHead',
}


def model_form(model: nn.Module, form: str, collapse_above: Optional[float]) -> nn.Module:
    """A deep copy of ``model`` (eval mode) in the given form; ``model`` is not changed.

    Args:
        model (nn.Module): a model in its train form.
        form (str): one of :data:`FORMS`.
        collapse_above (float, optional): see :func:`~mmdet_compconv.cnn.switch_to_deploy`.

    Returns:
        nn.Module: the copy.

    Raises:
        ValueError: an unknown form, or ``hybrid`` for a model without a ``backbone``.

    Example:
        >>> from mmdet_compconv.models import CompConvResNet
        >>> m = model_form(CompConvResNet(18, base_channels=8), 'deploy', None)
        >>> type(m.layer1[0].conv1).__name__
        'DeployedCompConv'
    """
    from mmcv.cnn import fuse_conv_bn
    if form not in FORMS:
        raise ValueError(f'form must be one of {FORMS}, got {form!r}')
    model = copy.deepcopy(model).eval()
    if form == 'deploy':
        return fuse_conv_bn(switch_to_deploy(model, collapse_above))
    if form == 'hybrid':
        if not isinstance(getattr(model, 'backbone', None), nn.Module):
            raise ValueError(f'form hybrid treats the backbone apart, but '
                             f'{type(model).__name__} has no backbone')
        to_export_form(model.backbone, 0.0)
    if form in ('export', 'hybrid'):
        return to_export_form(model, collapse_above)
    return model


def vanilla_twin(cfg: Any) -> Any:
    """The model config with every CompConv part replaced by mmdet's vanilla one.

    ``CompConvResNet`` -> ``ResNet``, ``CompConvFPN`` -> ``FPN``, ``CompConvRPNHead`` ->
    ``RPNHead`` (the unscoped type names of :data:`VANILLA_TYPES`),
    ``conv_cfg=dict(type='CompConv')`` (or ``'<scope>.CompConv'``) -> ``None``; the keys
    starting with ``compconv`` and ``stage_with_compconv`` are dropped, at every level.

    Args:
        cfg (Any): a (model) config: dicts (a ``ConfigDict`` too) become plain dicts, lists
            and tuples are rebuilt, other values kept.

    Returns:
        Any: the twin's config (``cfg`` is not changed).

    Example:
        >>> vanilla_twin(dict(type='CompConvResNet', depth=50, compconv_layers=('conv2', ),
        ...                   neck=dict(conv_cfg=dict(type='CompConv'))))
        {'type': 'ResNet', 'depth': 50, 'neck': {'conv_cfg': None}}
    """
    if isinstance(cfg, dict):
        out = {}
        for key, value in cfg.items():
            if key.startswith(('compconv', 'stage_with_compconv')):
                continue
            if key == 'type' and value in VANILLA_TYPES:
                value = VANILLA_TYPES[value]
            if key == 'conv_cfg' and isinstance(value, dict) and \
                    str(value.get('type', '')).split('.')[-1] == 'CompConv':
                value = None
            out[key] = vanilla_twin(value)
        return out
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(vanilla_twin(v) for v in cfg)
    return cfg
