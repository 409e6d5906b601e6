"""Loading pretrained weights with a report of how much of the model they covered.

Loading a plain ResNet checkpoint into a CompConv model must not silently leave a mostly random
network: :func:`load_pretrained` says, loudly, what was loaded and which groups were not.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_with_prefix

from ..cnn import CompConv


@dataclass
class LoadReport:
    """What :func:`load_state_dict_with_report` loaded.

    A dataclass; each argument is kept as the attribute of the same name.

    Args:
        loaded (int): parameter tensors of the model found in the checkpoint with the same
            shape (and loaded).
        total (int): parameter tensors of the model.
        loaded_numel (int): the values of the loaded parameter tensors.
        total_numel (int): the values of all parameter tensors of the model.
        missing_groups (list[str]): the modules with state (parameters or buffers, not
            ``num_batches_tracked``) not loaded from the checkpoint, as ``'layer1.0.bn1.*'``;
            a CompConv is one group (``'layer1.0.conv1.*'``). Default: [].
        mismatched (list[str]): checkpoint keys the model has with another shape (not
            loaded). Default: [].
        unexpected (list[str]): checkpoint keys the model does not have. Default: [].

    Example:
        >>> report = LoadReport(1, 2, 10, 20, missing_groups=['head.*'])
        >>> report.complete
        False
        >>> report.summary('w.pth')  # doctest: +ELLIPSIS
        'loaded 1/2 parameter tensors (10/20 values) from w.pth; NOT in the checkpoint, ...'
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
        """A one-paragraph description.

        Args:
            source (str): where the weights came from, named in the text.

        Returns:
            str: the counts, then the missing groups, mismatched and unexpected keys.
        """
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


#: As mmengine's ``load_checkpoint``: (pattern, replacement) applied to every key, in order.
DEFAULT_REVISE_KEYS: Tuple[Tuple[str, str], ...] = ((r'^module\.', ''), )


def load_state_dict_with_report(module: nn.Module, state_dict: Dict[str, torch.Tensor],
                                source: str = 'state_dict',
                                revise_keys: Sequence[Tuple[str, str]] = DEFAULT_REVISE_KEYS
                                ) -> LoadReport:
    """Load the entries of ``state_dict`` that fit ``module`` and report the coverage.

    A complete load is logged at INFO level; anything missing is logged as a WARNING that
    names the counts and the missing groups.

    Args:
        module (nn.Module): the model, loaded in place (``strict=False``).
        state_dict (dict[str, torch.Tensor]): the weights; keys the model does not have and
            tensors of another shape are skipped (and reported).
        source (str): where the weights come from, for the log and the error.
            Default: 'state_dict'.
        revise_keys (Sequence[tuple[str, str]]): ``(pattern, replacement)`` regular
            expression substitutions applied in order to every key before matching, as in
            mmengine's ``load_checkpoint``. Default: :data:`DEFAULT_REVISE_KEYS` (strips DDP's
            ``module.`` prefix).

    Returns:
        LoadReport: what was loaded.

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
    for pattern, replacement in revise_keys:
        state_dict = {re.sub(pattern, replacement, k): v for k, v in state_dict.items()}
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

    The checkpoint's ``state_dict`` (or the checkpoint itself, a plain state dict) is loaded
    with :func:`load_state_dict_with_report`.

    Args:
        module (nn.Module): the model, loaded in place.
        checkpoint (str): a path or URL (any mmengine scheme).
        prefix (str, optional): keep only the keys under this prefix (e.g. ``'backbone.'``; a
            missing final ``.`` is added) and strip it. Default: None (every key).
        map_location (str): as in ``torch.load``. Default: 'cpu'.

    Returns:
        LoadReport: what was loaded.

    Raises:
        RuntimeError: the checkpoint is not a dict, or none of the model's parameters is
            in it.
        AssertionError: no key is under ``prefix`` (mmengine's check).
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
