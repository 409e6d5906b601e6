"""Building CompConvs in place of the convs of mmdet's modules: :func:`compconv_like`, and
per-layer plans (:func:`load_compconv_plan`, :class:`CompConvPlanMixin`)."""
from __future__ import annotations

import copy
import os
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmcv.cnn import build_conv_layer
from mmengine.fileio import load
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.utils import is_seq_of

from ..cnn import CompConv

#: A per-layer plan: module name -> None (a dense conv) or a conv config (a CompConv's).
Plan = Dict[str, Optional[dict]]
PlanLike = Union[None, str, os.PathLike, Mapping[str, Optional[Mapping]]]
PLAN_SUFFIXES = ('.json', '.yaml', '.yml')

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


def compconv_like(conv: nn.Module, cfg: Optional[dict]) -> nn.Module:
    """Build a conv from ``cfg`` (e.g. a CompConv) with the geometry of ``conv``.

    in/out channels, kernel size, stride, padding, dilation, groups and the presence of a bias
    are copied, not the weights: the new conv has its own initialisation.

    Args:
        conv (nn.Module): the conv whose geometry is copied, e.g. an ``nn.Conv2d`` (any
            module with ``in_channels``, ``out_channels``, ``kernel_size``, ``stride``,
            ``padding``, ``dilation``, ``groups`` and an optional ``bias``).
        cfg (dict, optional): the conv config for mmcv's ``build_conv_layer``, e.g.
            ``dict(type='CompConv', c0=128)``; None builds an ``nn.Conv2d``.

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


def load_compconv_plan(plan: PlanLike) -> Optional[Plan]:
    """Read and check a ``compconv_plan``: a mapping, or the path of a JSON / YAML file.

    Each entry maps a module name (``'layer3.1.conv2'``, relative to the module the plan is
    given to) to None (a dense conv) or a conv config; a config without ``type`` is a
    CompConv's (``dict(c0=64)`` is ``dict(type='CompConv', c0=64)``).

    Args:
        plan (str | os.PathLike | Mapping, optional): the plan, or the path of a ``.json``,
            ``.yaml`` or ``.yml`` file holding one; None: no plan.

    Returns:
        dict[str, dict | None] or None: the plan as plain dicts (deep copies), every config
        with a ``type``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a file of another kind, or a config whose ``type`` is not a
            registered conv layer (the message names the layer and the config).
        TypeError: not a mapping from names to None or a dict.

    Example:
        >>> load_compconv_plan({'layer1.0.conv1': None, 'layer1.0.conv2': dict(c0=64)})
        {'layer1.0.conv1': None, 'layer1.0.conv2': {'c0': 64, 'type': 'CompConv'}}
    """
    if plan is None:
        return None
    if isinstance(plan, (str, os.PathLike)):
        path = os.fspath(plan)
        if not path.lower().endswith(PLAN_SUFFIXES):
            raise ValueError(f'compconv_plan={path!r}: a plan file is {PLAN_SUFFIXES}')
        if not os.path.isfile(path):
            raise FileNotFoundError(f'compconv_plan={path!r}: no such file')
        plan = load(path)
    if not isinstance(plan, Mapping):
        raise TypeError(f'compconv_plan must be None, a mapping from module names to None or a '
                        f'conv config, or the path of a JSON/YAML file; got {plan!r}')
    out: Plan = {}
    for name, cfg in plan.items():
        if not isinstance(name, str):
            raise TypeError(f'compconv_plan keys are module names, got {name!r}')
        if cfg is None:
            out[name] = None
            continue
        if not isinstance(cfg, Mapping):
            raise TypeError(f'compconv_plan[{name!r}] must be None (dense) or a conv config '
                            f'dict, got {cfg!r}')
        cfg = {k: copy.deepcopy(v) for k, v in cfg.items()}
        cfg.setdefault('type', 'CompConv')
        try:
            out[name] = check_compconv_cfg(cfg)
        except KeyError as e:
            raise ValueError(f'compconv_plan[{name!r}]={cfg!r}: {e.args[0]}') from None
    return out


class CompConvPlanMixin:
    """Per-layer plans for an mmdet module whose convs may be CompConvs.

    :meth:`apply_compconv_plan` rebuilds the convs a plan names, after the module is built
    as usual (so the layers it does not name follow ``compconv_cfg`` and the like);
    :meth:`effective_compconv_plan` reports what every conv it could plan is.
    """

    def plannable_convs(self) -> Dict[str, nn.Module]:
        """The convs a plan may name: every ``nn.Conv2d`` with ``groups=1`` or CompConv (not
        the sub-convolutions of a CompConv), by module name.

        Returns:
            dict[str, nn.Module]: module name -> conv, in module order.
        """
        found: Dict[str, nn.Module] = {}
        inside: Tuple[str, ...] = ()
        for name, m in self.named_modules():
            if inside and name.startswith(inside):
                continue
            if isinstance(m, CompConv):
                inside += (name + '.', )
                found[name] = m
            elif isinstance(m, nn.Conv2d) and m.groups == 1 and name:
                found[name] = m
        return found

    def apply_compconv_plan(self, plan: PlanLike) -> Optional[Plan]:
        """Rebuild the convs ``plan`` names: None as a dense conv (this module's ``conv_cfg``),
        a config as that conv (:func:`compconv_like`), each with the old conv's geometry.

        Args:
            plan (str | os.PathLike | Mapping, optional): see :func:`load_compconv_plan`.

        Returns:
            dict or None: the plan as read.

        Raises:
            ValueError: a name that is not a conv this module can plan, or a config its conv
                refuses (e.g. a CompConv depth that does not fit the channels); the message
                names the layer and the value.
        """
        plan = load_compconv_plan(plan)
        if not plan:
            return plan
        convs = self.plannable_convs()
        modules = dict(self.named_modules())
        for name, cfg in plan.items():
            if name not in convs:
                what = (f'a {type(modules[name]).__name__}, not a conv it can plan'
                        if name in modules else 'no module of that name')
                raise ValueError(f'compconv_plan names {name!r}, but {type(self).__name__} has '
                                 f'{what}; its plannable convs are e.g. {list(convs)[:4]}... '
                                 f'({len(convs)} in all)')
            try:
                new = compconv_like(convs[name], cfg if cfg is not None else
                                    getattr(self, 'conv_cfg', None))
            except (ValueError, TypeError) as e:
                raise ValueError(f'compconv_plan[{name!r}]={cfg!r}: {e}') from e
            parent, _, child = name.rpartition('.')
            setattr(self.get_submodule(parent) if parent else self, child, new)
        return plan

    def effective_compconv_plan(self) -> Plan:
        """What each plannable conv is: None (dense) or its CompConv's config.

        Of the train form (call it before ``switch_to_deploy``). Given back as
        ``compconv_plan`` to the same config, it builds the same layers.

        Returns:
            dict[str, dict | None]: module name -> None or
            :attr:`~mmdet_compconv.cnn.CompConv.compconv_cfg`, JSON-serialisable.
        """
        return {name: m.compconv_cfg if isinstance(m, CompConv) else None
                for name, m in self.plannable_convs().items()}


def compconv_plan_of(model: nn.Module) -> Plan:
    """The effective plan of every :class:`CompConvPlanMixin` part of ``model``.

    Args:
        model (nn.Module): a detector (names get the part's prefix, ``backbone.layer1.0.conv1``)
            or a part itself (names as its ``effective_compconv_plan``).

    Returns:
        dict[str, dict | None]: module name -> None (dense) or a CompConv config.

    Example:
        >>> from mmdet_compconv.models import CompConvResNet
        >>> plan = compconv_plan_of(CompConvResNet(18, compconv_plan={'layer1.0.conv1': None}))
        >>> plan['conv1'], plan['layer1.0.conv1'], plan['layer1.0.conv2']['c0']
        (None, None, 128)
    """
    out: Plan = {}
    for prefix, m in model.named_modules():
        if isinstance(m, CompConvPlanMixin):
            out.update({(f'{prefix}.' if prefix else '') + k: v
                        for k, v in m.effective_compconv_plan().items()})
    return out
