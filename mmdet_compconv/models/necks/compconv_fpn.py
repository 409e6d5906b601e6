"""FPN and PAFPN whose convolutions are CompConvs, built on mmdet's necks."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from mmcv.cnn import ConvModule
from mmdet.models.necks import FPN, PAFPN
from mmdet.registry import MODELS
from mmdet.utils import OptConfigType

from ..utils import (DEFAULT_COMPCONV_CFG, CompConvPlanMixin, PlanLike, check_compconv_cfg,
                     compconv_like, names_tuple)


@MODELS.register_module()
class CompConvFPN(CompConvPlanMixin, FPN):
    """mmdet's FPN with CompConv convolutions.

    Takes every argument of mmdet's ``FPN`` (``conv_cfg`` applies to the convs that stay
    plain), plus:

    Args:
        compconv_cfg (dict, optional): the conv config of the replaced convs, built with each
            conv's geometry (:func:`~mmdet_compconv.models.compconv_like`); None keeps a
            plain FPN. Default: ``dict(type='CompConv', c0=128)``.
        compconv_convs (str | Sequence[str], optional): which ConvModules get a CompConv:
            ``'lateral'`` (the 1x1 lateral convs), ``'fpn'`` (the 3x3 output convs) and
            ``'extra'`` (the stride-2 3x3 convs of the extra levels, when
            ``add_extra_convs``). Default: None (``default_compconv_convs``:
            ``('lateral', 'fpn')``).
        compconv_plan (str | dict, optional): per-layer choices applied over the above, from
            conv names (``'lateral_convs.0.conv'``, ``'fpn_convs.1.conv'``) to None (dense)
            or a conv config, as in :class:`~mmdet_compconv.models.CompConvResNet`.
            Default: None.

    Raises:
        ValueError: an unknown name in compconv_convs, ``'extra'`` without extra convs, or a
            compconv_plan naming a layer that is not one of the neck's convs.
        TypeError: a ``compconv_cfg`` that is neither None nor a dict with a ``type``.

    Example:
        >>> import torch
        >>> neck = CompConvFPN([256, 512], 256, num_outs=3)
        >>> type(neck.lateral_convs[1].conv).__name__
        'CompConv'
        >>> feats = [torch.rand(1, 256, 16, 16), torch.rand(1, 512, 8, 8)]
        >>> [tuple(o.shape) for o in neck(feats)]
        [(1, 256, 16, 16), (1, 256, 8, 8), (1, 256, 4, 4)]
    """

    default_compconv_convs = ('lateral', 'fpn')

    def __init__(self,
                 *args,
                 compconv_cfg: OptConfigType = DEFAULT_COMPCONV_CFG,
                 compconv_convs: Optional[Sequence[str]] = None,
                 compconv_plan: PlanLike = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        compconv_cfg = check_compconv_cfg(compconv_cfg)
        groups = self.compconv_groups()
        names = names_tuple(compconv_convs, 'compconv_convs')
        names = self.default_compconv_convs if names is None else names
        unknown = sorted(set(names) - set(groups))
        if unknown:
            raise ValueError(f'compconv_convs={names!r} names {unknown}; '
                             f'{type(self).__name__} has {tuple(groups)}')
        empty = [n for n in names if not groups[n]]
        if empty:
            raise ValueError(f'compconv_convs asks for {empty}, but this neck has none of them '
                             f'(add_extra_convs={self.add_extra_convs!r})')
        self.compconv_convs = names if compconv_cfg else ()
        for name in self.compconv_convs:
            for module in groups[name]:
                module.conv = compconv_like(module.conv, compconv_cfg)
        self.compconv_plan = self.apply_compconv_plan(compconv_plan)

    def compconv_groups(self) -> Dict[str, List[ConvModule]]:
        """The ConvModules of this neck by group name.

        Returns:
            dict[str, list[ConvModule]]: group name (as in ``compconv_convs``) -> its
            ConvModules.
        """
        n = len(self.lateral_convs)
        return dict(lateral=list(self.lateral_convs), fpn=list(self.fpn_convs[:n]),
                    extra=list(self.fpn_convs[n:]))


@MODELS.register_module()
class CompConvPAFPN(CompConvFPN, PAFPN):
    """mmdet's PAFPN with CompConv convolutions.

    Takes every argument of mmdet's ``PAFPN`` (``conv_cfg`` applies to the convs that stay
    plain), plus:

    Args:
        compconv_cfg (dict, optional): the conv config of the replaced convs; None keeps a
            plain PAFPN. Default: ``dict(type='CompConv', c0=128)``.
        compconv_convs (str | Sequence[str], optional): which ConvModules get a CompConv:
            those of :class:`CompConvFPN` (``'lateral'``, ``'fpn'``, ``'extra'``), plus
            ``'downsample'`` (the stride-2 3x3 convs of the bottom-up path) and ``'pafpn'``
            (its 3x3 output convs). Default: None (``default_compconv_convs``:
            ``('lateral', 'fpn', 'downsample', 'pafpn')``).
        compconv_plan (str | dict, optional): per-layer choices, as in
            :class:`CompConvFPN` (e.g. ``'downsample_convs.0.conv'``). Default: None.

    Raises:
        ValueError: an unknown name in compconv_convs, or ``'extra'`` without extra convs.
        TypeError: a ``compconv_cfg`` that is neither None nor a dict with a ``type``.

    Example:
        >>> import torch
        >>> neck = CompConvPAFPN([256, 512], 256, num_outs=2)
        >>> type(neck.downsample_convs[0].conv).__name__
        'CompConv'
        >>> feats = [torch.rand(1, 256, 16, 16), torch.rand(1, 512, 8, 8)]
        >>> [tuple(o.shape) for o in neck(feats)]
        [(1, 256, 16, 16), (1, 256, 8, 8)]
    """

    default_compconv_convs = ('lateral', 'fpn', 'downsample', 'pafpn')

    def compconv_groups(self) -> Dict[str, List[ConvModule]]:
        """The ConvModules of this neck by group name.

        Returns:
            dict[str, list[ConvModule]]: group name (as in ``compconv_convs``) -> its
            ConvModules.
        """
        return dict(super().compconv_groups(), downsample=list(self.downsample_convs),
                    pafpn=list(self.pafpn_convs))
