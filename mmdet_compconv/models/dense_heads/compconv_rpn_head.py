"""An RPN head whose 3x3 conv is a CompConv (mmdet's RPNHead builds a bare ``nn.Conv2d``)."""
from __future__ import annotations

from typing import Dict

import torch.nn as nn
from mmdet.models.dense_heads import RPNHead
from mmdet.registry import MODELS
from mmdet.utils import OptConfigType

from ..utils import (DEFAULT_COMPCONV_CFG, CompConvPlanMixin, PlanLike, check_compconv_cfg,
                     compconv_like)


@MODELS.register_module()
class CompConvRPNHead(CompConvPlanMixin, RPNHead):
    """mmdet's ``RPNHead`` whose ``rpn_conv`` (3x3, C_in -> feat_channels) is a CompConv.

    With ``num_convs > 1`` every ConvModule of the ``rpn_conv`` stack gets a CompConv. The 1x1
    ``rpn_cls`` / ``rpn_reg`` stay plain. Takes every argument of ``RPNHead``, plus:

    Args:
        compconv_cfg (dict, optional): the conv config of the replaced conv(s), built with
            each conv's geometry (:func:`~mmdet_compconv.models.compconv_like`); None keeps
            mmdet's RPNHead. Default: ``dict(type='CompConv', c0=128)``.
        compconv_plan (str | dict, optional): per-layer choices applied over
            ``compconv_cfg``, from ``'rpn_conv'`` (or ``'rpn_conv.<i>.conv'`` with
            ``num_convs > 1``) to None (dense) or a conv config, as in
            :class:`~mmdet_compconv.models.CompConvResNet`. Default: None.

    Example:
        >>> import torch
        >>> head = CompConvRPNHead(in_channels=256, feat_channels=256, anchor_generator=dict(
        ...     type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0], strides=[4]))
        >>> type(head.rpn_conv).__name__, head.rpn_conv.depth
        ('CompConv', 2)
        >>> cls, reg = head.forward_single(torch.rand(1, 256, 8, 8))
        >>> tuple(cls.shape), tuple(reg.shape)
        ((1, 3, 8, 8), (1, 12, 8, 8))
    """

    def __init__(self, *args, compconv_cfg: OptConfigType = DEFAULT_COMPCONV_CFG,
                 compconv_plan: PlanLike = None, **kwargs) -> None:
        self.compconv_cfg = check_compconv_cfg(compconv_cfg)  # read by _init_layers
        super().__init__(*args, **kwargs)
        self.compconv_plan = self.apply_compconv_plan(compconv_plan)

    def plannable_convs(self) -> Dict[str, nn.Module]:
        """The 3x3 ``rpn_conv`` (stack); the 1x1 ``rpn_cls`` / ``rpn_reg`` stay plain.

        Returns:
            dict[str, nn.Module]: module name -> conv.
        """
        return {k: v for k, v in super().plannable_convs().items()
                if k.startswith('rpn_conv')}

    def _init_layers(self) -> None:
        """Build RPNHead's layers, then swap the 3x3 conv(s) for CompConv."""
        super()._init_layers()
        if self.compconv_cfg is None:
            return
        if self.num_convs > 1:
            for module in self.rpn_conv:
                module.conv = compconv_like(module.conv, self.compconv_cfg)
        else:
            self.rpn_conv = compconv_like(self.rpn_conv, self.compconv_cfg)
