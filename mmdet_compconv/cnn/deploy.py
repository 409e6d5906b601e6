"""Switching a trained model to its PyTorch inference form: :func:`switch_to_deploy`."""
from __future__ import annotations

import warnings
from typing import Optional

import torch.nn as nn

from .compconv import CompConv
from .deployed_compconv import DeployedCompConv
from .fusion import (COLLAPSE_ABOVE, check_collapse_above, collapse_pointwise, collapses,
                     take_consuming_norm)

__all__ = ['switch_to_deploy']


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
        model (nn.Module): any model containing CompConv modules (not a bare CompConv: the
            children are replaced in place). A CompConv already switched on its own
            (:meth:`CompConv.switch_to_deploy`) is left as it is, with its norm.
        collapse_above (float, optional): a stride-1 1x1 CompConv whose MACs exceed this
            fraction (in [0, 1)) of its dense equivalent's becomes that dense conv
            (:func:`collapse_pointwise`): it saves too little compute to pay for its extra
            memory passes. 0.15 collapses in a CompConv128 ResNet-50 the d <= 2 1x1 convs of
            layer1/2 and every expanding conv3, not the d = 3 reducing conv1 of layer2-4.
            None: keep every CompConv a :class:`DeployedCompConv`.
            Default: 0.15 (:data:`~mmdet_compconv.cnn.COLLAPSE_ABOVE`).

    Returns:
        nn.Module: the same model, in eval mode, no parameter requiring grad.

    Raises:
        TypeError: ``model`` is itself a CompConv (use ``DeployedCompConv(conv)``).
        ValueError: ``collapse_above`` is neither None nor a fraction in [0, 1).

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
    check_collapse_above(collapse_above)
    if any(m.training for m in model.modules()):
        warnings.warn(f'switch_to_deploy: {type(model).__name__} was in train mode; its '
                      f'inference form is put in eval mode (BatchNorms are folded with their '
                      f'running statistics)', stacklevel=2)
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if not isinstance(child, CompConv) or child.deployed is not None:
                continue  # a CompConv switched on its own keeps its form (and its BN)
            norm = take_consuming_norm(parent, name)
            if collapses(child, collapse_above):
                parent._modules[name] = collapse_pointwise(child, norm)
            else:
                parent._modules[name] = DeployedCompConv(child, norm)
    return model.eval().requires_grad_(False)  # eval again: the new modules too
