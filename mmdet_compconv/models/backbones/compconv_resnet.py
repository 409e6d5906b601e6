"""ResNet backbones whose convolutions are CompConvs (spec §5), built on mmdet's ResNet."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

from mmdet.models.backbones.resnet import BasicBlock, Bottleneck, ResNet, ResNetV1d
from mmdet.registry import MODELS
from mmdet.utils import OptConfigType

from ...checkpoint import ReportedPretrainedMixin
from ...cnn import COLLAPSE_ABOVE, switch_to_deploy
from ..utils import (DEFAULT_COMPCONV_CFG, CompConvPlanMixin, PlanLike, check_compconv_cfg,
                     compconv_like, names_tuple)


class CompConvBlockMixin:
    """Rebuild the block convs named in ``compconv_layers`` from ``compconv_cfg``.

    ``compconv_cfg=None`` keeps the block as mmdet builds it; ``compconv_layers=None`` means
    every conv of the block (``conv_names``).
    """

    conv_names: Tuple[str, ...] = ()

    def __init__(self,
                 *args,
                 compconv_cfg: OptConfigType = DEFAULT_COMPCONV_CFG,
                 compconv_layers: Optional[Sequence[str]] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        layers = names_tuple(compconv_layers, 'compconv_layers')
        layers = self.conv_names if layers is None else layers
        unknown = sorted(set(layers) - set(self.conv_names))
        if unknown:
            raise ValueError(f'compconv_layers={layers!r} names {unknown}, but '
                             f'{type(self).__name__} has only the convs {self.conv_names}')
        compconv_cfg = check_compconv_cfg(compconv_cfg)
        self.compconv_layers = layers if compconv_cfg else ()
        if not self.compconv_layers:
            return
        if getattr(self, 'with_dcn', False) and 'conv2' in layers:
            raise ValueError('dcn replaces conv2 with a deformable conv, so conv2 cannot also be '
                             "a CompConv: drop 'conv2' from compconv_layers or dcn from this "
                             'stage (stage_with_dcn / stage_with_compconv)')
        for name in layers:
            setattr(self, name, compconv_like(getattr(self, name), compconv_cfg))


class CompConvBasicBlock(CompConvBlockMixin, BasicBlock):
    """mmdet's ``BasicBlock`` with CompConv convs (``conv1``, ``conv2``: both 3x3).

    Takes every argument of mmdet's ``BasicBlock`` (inplanes, planes, stride, dilation,
    downsample, style, with_cp, conv_cfg, norm_cfg, init_cfg), plus:

    Args:
        compconv_cfg (dict, optional): the conv config of the replaced convs, built with each
            conv's geometry (:func:`~mmdet_compconv.models.compconv_like`); None keeps the
            block as mmdet builds it. Default: ``dict(type='CompConv', c0=128)``.
        compconv_layers (str | Sequence[str], optional): the convs to replace, among
            ``'conv1'`` and ``'conv2'``. Default: None (both).

    Raises:
        ValueError: an unknown name in ``compconv_layers``.
        TypeError: a ``compconv_cfg`` that is neither None nor a dict with a ``type``.
        KeyError: a ``compconv_cfg`` type that is not a registered conv layer.

    Example:
        >>> import torch
        >>> block = CompConvBasicBlock(64, 64)
        >>> type(block.conv1).__name__, block(torch.rand(1, 64, 8, 8)).shape
        ('CompConv', torch.Size([1, 64, 8, 8]))
    """

    conv_names = ('conv1', 'conv2')


class CompConvBottleneck(CompConvBlockMixin, Bottleneck):
    """mmdet's ``Bottleneck`` with CompConv convs (``conv1`` 1x1, ``conv2`` 3x3, ``conv3`` 1x1).

    Takes every argument of mmdet's ``Bottleneck`` (inplanes, planes, stride, dilation,
    downsample, style, with_cp, conv_cfg, norm_cfg, dcn, plugins, init_cfg), plus:

    Args:
        compconv_cfg (dict, optional): the conv config of the replaced convs, built with each
            conv's geometry (:func:`~mmdet_compconv.models.compconv_like`); None keeps the
            block as mmdet builds it. Default: ``dict(type='CompConv', c0=128)``.
        compconv_layers (str | Sequence[str], optional): the convs to replace, among
            ``'conv1'``, ``'conv2'`` and ``'conv3'``. Default: None (all three).

    Raises:
        ValueError: an unknown name in ``compconv_layers``, or ``'conv2'`` with ``dcn``
            (which makes conv2 a deformable conv).
        TypeError: a ``compconv_cfg`` that is neither None nor a dict with a ``type``.
        KeyError: a ``compconv_cfg`` type that is not a registered conv layer.

    Example:
        >>> import torch
        >>> block = CompConvBottleneck(256, 64, compconv_layers=('conv2',))
        >>> [type(block.get_submodule(n)).__name__ for n in ('conv1', 'conv2', 'conv3')]
        ['Conv2d', 'CompConv', 'Conv2d']
        >>> block(torch.rand(1, 256, 8, 8)).shape
        torch.Size([1, 256, 8, 8])
    """

    conv_names = ('conv1', 'conv2', 'conv3')


COMPCONV_BLOCKS = {BasicBlock: CompConvBasicBlock, Bottleneck: CompConvBottleneck}


@MODELS.register_module()
class CompConvResNet(CompConvPlanMixin, ReportedPretrainedMixin, ResNet):
    """mmdet's ResNet with CompConv convolutions.

    Every argument of mmdet's ``ResNet`` (depth, in_channels, stem_channels, base_channels,
    num_stages, strides, dilations, out_indices, style, deep_stem, avg_down, frozen_stages,
    conv_cfg, norm_cfg, norm_eval, dcn, stage_with_dcn, plugins, with_cp, zero_init_residual,
    pretrained, init_cfg) keeps its meaning; ``conv_cfg`` applies to the convs that stay plain.
    A ``Pretrained`` init_cfg reports how much of the model the checkpoint covered and warns
    loudly, naming the missing groups, when it is partial (see
    :mod:`mmdet_compconv.checkpoint.report`).

    Args:
        depth (int): 18, 34, 50, 101 or 152.
        compconv_cfg (dict, optional): the conv config of the replaced convs, built with each
            conv's geometry (:func:`~mmdet_compconv.models.compconv_like`); None builds a
            plain ResNet. Default: ``dict(type='CompConv', c0=128)``.
        compconv_layers (str | Sequence[str], optional): the block convs to replace:
            ``('conv2',)`` (or ``'conv2'``) for the 3x3 convs of a Bottleneck only. Default:
            None (all of them: ``conv1..conv3`` of a Bottleneck, ``conv1, conv2`` of a
            BasicBlock).
        stage_with_compconv (Sequence[bool], optional): per stage, whether its blocks (and,
            with ``compconv_downsample``, its downsample conv) use CompConv; one entry per
            stage. Default: None (all stages).
        compconv_stem (bool): replace the stem convs too (the 7x7, or the three 3x3 of a deep
            stem). Default: False.
        compconv_downsample (bool): replace the 1x1 downsample convs of the shortcuts too
            (in the stages of ``stage_with_compconv``). Default: False.
        compconv_plan (str | dict, optional): per-layer choices applied over the above: a
            mapping (or the path of a JSON/YAML file holding one) from conv names
            (``'layer3.1.conv2'``, ``'conv1'``, ``'layer2.0.downsample.0'``) to None (a dense
            conv) or a conv config (``dict(c0=64)``, ``dict(type='CompConv', depth=2,
            prim_multiple=16)``; without ``type``, a CompConv); see
            :func:`~mmdet_compconv.models.load_compconv_plan`. The layers it does not name
            follow ``compconv_cfg`` and the options above. :meth:`effective_compconv_plan`
            reports what every conv is. Default: None.
        **kwargs: the other arguments of mmdet's ``ResNet``.

    Raises:
        ValueError: unknown names in compconv_layers, a stage_with_compconv whose length
            is not num_stages, dcn on a stage whose conv2 is a CompConv, or a compconv_plan
            naming a layer that is not one of the model's convs or giving a conv config it
            refuses.
        TypeError: a compconv_cfg that is neither None nor a dict with a type.
        KeyError: a compconv_cfg type that is not a registered conv layer.

    Example:
        >>> import torch
        >>> model = CompConvResNet(depth=18).eval()
        >>> [tuple(o.shape) for o in model(torch.rand(1, 3, 32, 32))]
        [(1, 64, 8, 8), (1, 128, 4, 4), (1, 256, 2, 2), (1, 512, 1, 1)]
        >>> model = CompConvResNet(depth=18, compconv_plan={'layer1.0.conv1': None,
        ...                                                 'layer4.1.conv2': dict(c0=64)})
        >>> plan = model.effective_compconv_plan()
        >>> plan['layer1.0.conv1'], plan['layer1.0.conv2']['c0'], plan['layer4.1.conv2']['c0']
        (None, 128, 64)
    """

    def __init__(self,
                 depth: int,
                 compconv_cfg: OptConfigType = DEFAULT_COMPCONV_CFG,
                 compconv_layers: Optional[Sequence[str]] = None,
                 stage_with_compconv: Optional[Sequence[bool]] = None,
                 compconv_stem: bool = False,
                 compconv_downsample: bool = False,
                 compconv_plan: PlanLike = None,
                 **kwargs) -> None:
        num_stages = kwargs.get('num_stages', 4)
        if stage_with_compconv is None:
            stage_with_compconv = (True, ) * num_stages
        if len(stage_with_compconv) != num_stages:
            raise ValueError(f'stage_with_compconv={tuple(stage_with_compconv)!r} needs one '
                             f'entry per stage (num_stages={num_stages})')
        # Read by _make_stem_layer / make_res_layer, which ResNet.__init__ calls.
        self.compconv_cfg = check_compconv_cfg(compconv_cfg)
        self.compconv_layers = names_tuple(compconv_layers, 'compconv_layers')
        self.stage_with_compconv = tuple(stage_with_compconv)
        self.compconv_stem = compconv_stem
        self.compconv_downsample = compconv_downsample
        super().__init__(depth=depth, **kwargs)
        self.compconv_plan = self.apply_compconv_plan(compconv_plan)
        if self.compconv_plan:
            self._freeze_stages()  # the new convs of frozen stages

    def train(self, mode: bool = True) -> 'CompConvResNet':
        """ResNet.train (frozen stages, norm_eval), returning self as nn.Module.train does.

        Args:
            mode (bool): training mode (True) or evaluation mode (False). Default: True.

        Returns:
            CompConvResNet: this backbone.
        """
        super().train(mode)
        return self

    def switch_to_deploy(self, collapse_above: Optional[float] = COLLAPSE_ABOVE) -> 'CompConvResNet':
        """Turn this trained backbone into its faster inference form, in place.

        Every CompConv and the BatchNorm after it become a
        :class:`~mmdet_compconv.DeployedCompConv` (see :func:`mmdet_compconv.switch_to_deploy`);
        fold the remaining plain conv + BN pairs with mmcv's ``fuse_conv_bn``.

        Args:
            collapse_above (float, optional): 1x1 CompConvs whose MACs exceed this fraction
                of the dense conv's become that dense conv; None keeps every CompConv (see
                :func:`mmdet_compconv.switch_to_deploy`). Default: 0.15.

        Returns:
            CompConvResNet: this backbone, in eval mode.

        Example:
            >>> import torch
            >>> model = CompConvResNet(depth=18).eval()
            >>> x = torch.rand(1, 3, 32, 32)
            >>> y = model(x)
            >>> z = model.switch_to_deploy()(x)
            >>> all(torch.allclose(a, b, atol=1e-4) for a, b in zip(y, z))
            True
        """
        return switch_to_deploy(self, collapse_above)

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        super()._make_stem_layer(in_channels, stem_channels)
        if not (self.compconv_stem and self.compconv_cfg):
            return
        if self.deep_stem:
            for i in (0, 3, 6):
                self.stem[i] = compconv_like(self.stem[i], self.compconv_cfg)
        else:
            self.conv1 = compconv_like(self.conv1, self.compconv_cfg)

    def make_res_layer(self, **kwargs):
        """Build a stage of CompConv blocks (``ResNet.__init__`` calls this per stage)."""
        stage = len(self.res_layers)
        cfg = self.compconv_cfg if self.stage_with_compconv[stage] else None
        block = kwargs.pop('block')
        layer = super().make_res_layer(
            block=COMPCONV_BLOCKS.get(block, block),
            compconv_cfg=cfg,
            compconv_layers=self.compconv_layers,
            **kwargs)
        downsample = layer[0].downsample
        if cfg and self.compconv_downsample and downsample is not None:
            downsample[-2] = compconv_like(downsample[-2], cfg)  # [AvgPool,] conv, norm
        return layer


@MODELS.register_module()
class CompConvResNetV1d(CompConvResNet, ResNetV1d):
    """mmdet's ResNetV1d (deep 3x3 stem, average-pool downsample) with CompConvs.

    Takes the arguments of :class:`CompConvResNet` (documented there) except ``deep_stem``
    and ``avg_down`` (both True): ``compconv_stem`` replaces the three 3x3 stem convs, and
    ``compconv_downsample`` the 1x1 shortcut convs after their average pooling.

    Example:
        >>> import torch
        >>> model = CompConvResNetV1d(depth=50, base_channels=8, compconv_stem=True).eval()
        >>> len(model.stem), type(model.stem[0]).__name__
        (9, 'CompConv')
        >>> [o.shape[1] for o in model(torch.rand(1, 3, 32, 32))]
        [32, 64, 128, 256]
    """
