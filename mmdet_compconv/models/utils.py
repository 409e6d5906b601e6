"""Helpers shared by the CompConv backbones, necks and heads.

* :func:`compconv_like` rebuilds a convolution as a CompConv of the same geometry.
* :func:`load_pretrained` loads a checkpoint and says, loudly, how much of the model it
  covered: loading a plain ResNet checkpoint into a CompConv model must not silently leave
  a mostly random network.
* :func:`conv_layers` lists the convolutions of a model (a CompConv counts as one layer) with
  their output sizes and analytic MACs; :func:`count_macs` counts MACs with torch's
  ``FlopCounterMode``. The complexity tool and the tests use both.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer
from mmengine.logging import print_log
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_with_prefix
from torch.utils.flop_counter import FlopCounterMode

from ..compconv import CompConv
from ..complexity import conv_macs

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


def compconv_like(conv: nn.Module, cfg: dict) -> nn.Module:
    """Build a conv from ``cfg`` (e.g. a CompConv) with the geometry of ``conv``.

    in/out channels, kernel size, stride, padding, dilation, groups and the presence of a bias
    are copied; CompConv raises ValueError for what it cannot express (groups > 1, padding that
    is not "same", even kernels).

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


# --------------------------------------------------------------------------- checkpoints
@dataclass
class LoadReport:
    """What :func:`load_state_dict_with_report` loaded.

    Attributes:
        loaded: parameter tensors of the model found in the checkpoint (same shape).
        total: parameter tensors of the model.
        loaded_numel / total_numel: the same counted in values.
        missing_groups: modules (a CompConv is one group) with state missing from the
            checkpoint, as ``'layer1.0.conv1.*'``.
        mismatched: keys present in both with different shapes (not loaded).
        unexpected: checkpoint keys the model does not have.
    """

    loaded: int
    total: int
    loaded_numel: int
    total_numel: int
    missing_groups: List[str] = field(default_factory=list)
    mismatched: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every model tensor was loaded."""
        return not self.missing_groups

    def summary(self, source: str) -> str:
        """A one-paragraph description."""
        text = (f'loaded {self.loaded}/{self.total} parameter tensors '
                f'({self.loaded_numel:,}/{self.total_numel:,} values) from {source}')
        if self.missing_groups:
            text += (f'; NOT in the checkpoint, left at their initialisation: '
                     f'{len(self.missing_groups)} groups: {", ".join(self.missing_groups)}')
        if self.mismatched:
            text += f'; shape mismatch (not loaded): {", ".join(self.mismatched)}'
        if self.unexpected:
            text += f'; {len(self.unexpected)} checkpoint keys unused, e.g. {self.unexpected[0]}'
        return text


def _group(key: str, compconvs: Sequence[str]) -> str:
    for name in compconvs:
        if key.startswith(name + '.'):
            return name + '.*'
    return (key.rsplit('.', 1)[0] + '.*') if '.' in key else key


def load_state_dict_with_report(module: nn.Module, state_dict: Dict[str, torch.Tensor],
                                source: str = 'state_dict') -> LoadReport:
    """Load the entries of ``state_dict`` that fit ``module`` and report the coverage.

    A complete load is logged at INFO level; anything missing is logged as a WARNING that
    names the counts and the missing groups.

    Raises:
        RuntimeError: when not a single parameter of ``module`` is in ``state_dict`` (a
            wrong checkpoint or prefix).

    Example:
        >>> import torch.nn as nn
        >>> src, dst = nn.Sequential(nn.Conv2d(4, 4, 3)), nn.Sequential(nn.Conv2d(4, 4, 3))
        >>> load_state_dict_with_report(dst, src.state_dict()).complete
        True
    """
    own = module.state_dict()
    state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                  for k, v in state_dict.items()}
    fit = {k: v for k, v in state_dict.items() if k in own and own[k].shape == v.shape}
    module.load_state_dict(fit, strict=False)
    params = dict(module.named_parameters())
    compconvs = [n for n, m in module.named_modules() if isinstance(m, CompConv)]
    groups = dict.fromkeys(
        _group(k, compconvs) for k in own if k not in fit and not k.endswith('num_batches_tracked'))
    report = LoadReport(
        loaded=sum(k in fit for k in params),
        total=len(params),
        loaded_numel=sum(p.numel() for k, p in params.items() if k in fit),
        total_numel=sum(p.numel() for p in params.values()),
        missing_groups=list(groups),
        mismatched=[k for k in state_dict if k in own and k not in fit],
        unexpected=[k for k in state_dict if k not in own])
    name = type(module).__name__
    if report.loaded == 0 and report.total > 0:
        raise RuntimeError(f'{name}: none of the {report.total} parameter tensors is in '
                           f'{source} (wrong checkpoint or prefix?). {report.summary(source)}')
    if report.complete:
        print_log(f'{name}: {report.summary(source)}', logger='current', level=logging.INFO)
    else:
        print_log(f'{name}: PARTIAL CHECKPOINT LOAD, the model is partly random: '
                  f'{report.summary(source)}', logger='current', level=logging.WARNING)
    return report


def load_pretrained(module: nn.Module, checkpoint: str, prefix: Optional[str] = None,
                    map_location: str = 'cpu') -> LoadReport:
    """Load ``checkpoint`` into ``module`` as mmengine's ``PretrainedInit`` does, with a report.

    Args:
        module: the model.
        checkpoint: a path or URL (any mmengine scheme).
        prefix: keep only the keys under this prefix (e.g. ``'backbone.'``) and strip it.
        map_location: as in ``torch.load``.
    """
    if prefix is None:
        ckpt = _load_checkpoint(checkpoint, map_location=map_location)
        if not isinstance(ckpt, dict):
            raise RuntimeError(f'No state_dict found in checkpoint file {checkpoint}')
        state_dict = ckpt.get('state_dict', ckpt)
    else:
        state_dict = _load_checkpoint_with_prefix(prefix, checkpoint, map_location=map_location)
    source = checkpoint if prefix is None else f'{checkpoint} (prefix {prefix!r})'
    return load_state_dict_with_report(module, state_dict, source)


class ReportedPretrainedMixin:
    """``init_weights`` that loads a ``Pretrained`` init_cfg through :func:`load_pretrained`.

    Other init_cfg entries run first, as in mmengine (pretrained weights have the last word).
    The report of the last load is kept as ``self.pretrained_report``.
    """

    def init_weights(self) -> None:
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        pretrained = [c for c in cfgs if isinstance(c, dict) and c.get('type') == 'Pretrained']
        if not pretrained:
            return super().init_weights()
        original = self.init_cfg
        self.init_cfg = [c for c in cfgs if c is not None and c not in pretrained] or None
        try:
            super().init_weights()
        finally:
            self.init_cfg = original
        for cfg in pretrained:
            args = {k: v for k, v in cfg.items() if k != 'type'}
            self.pretrained_report = load_pretrained(self, **args)


# --------------------------------------------------------------------------- complexity
@dataclass
class ConvLayer:
    """One convolution of a model, as :func:`conv_layers` lists it."""

    name: str
    module: nn.Module
    out_size: Tuple[int, int]

    @property
    def macs(self) -> int:
        """Analytic MACs of this layer for one image."""
        return conv_macs(self.module, self.out_size)

    @property
    def vanilla_macs(self) -> int:
        """MACs of a plain convolution of the same geometry."""
        m = self.module
        return (self.out_size[0] * self.out_size[1] * m.kernel_size[0] * m.kernel_size[1] *
                m.in_channels * m.out_channels // m.groups)


def conv_layers(model: nn.Module, inputs) -> List[ConvLayer]:
    """Run ``model(inputs)`` and list its convolution calls in call order.

    A CompConv is one layer (its sub-convolutions are not listed); other ``nn.Conv2d``
    modules are listed as they are. A conv called several times (a head shared by the FPN
    levels) is listed once per call. Works on the meta device.

    Example:
        >>> import torch, torch.nn as nn
        >>> from mmdet_compconv import CompConv
        >>> model = nn.Sequential(nn.Conv2d(3, 64, 3, 2, 1), CompConv(64, 64, 3, padding=1))
        >>> [(c.name, c.out_size, c.macs) for c in conv_layers(model, torch.rand(1, 3, 8, 8))]
        [('0', (4, 4), 27648), ('1', (4, 4), 299520)]
    """
    found: List[ConvLayer] = []
    compconvs = [n for n, m in model.named_modules() if isinstance(m, CompConv)]
    hooks = []
    for name, m in model.named_modules():
        inside = any(name.startswith(c + '.') for c in compconvs)
        if isinstance(m, (CompConv, nn.Conv2d)) and not inside:
            def hook(mod, args, out, name=name):
                found.append(ConvLayer(name, mod, tuple(out.shape[-2:])))
            hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for h in hooks:
            h.remove()
    return found


def count_macs(model: nn.Module, inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass: torch's ``FlopCounterMode`` total / 2.

    Example:
        >>> import torch, torch.nn as nn
        >>> count_macs(nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.rand(1, 3, 4, 4))
        3456
    """
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(inputs)
    return counter.get_total_flops() // 2
