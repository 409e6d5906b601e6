"""Loading a teacher's weights, refusing a checkpoint that does not fit the teacher."""
from __future__ import annotations

import logging
from typing import Dict

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.runner.checkpoint import _load_checkpoint


def _fit_prefix(state_dict: Dict[str, torch.Tensor],
                own: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Strip ``module.`` (DDP) and, for a backbone teacher, ``backbone.`` (an mmdet detector or
    an mmpretrain classifier checkpoint) when the teacher's own keys lack them."""
    state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                  for k, v in state_dict.items()}
    if not any(k.startswith('backbone.') for k in own) and any(
            k.startswith('backbone.') for k in state_dict):
        state_dict = {k[len('backbone.'):]: v for k, v in state_dict.items()
                      if k.startswith('backbone.')}
    return state_dict


def load_teacher_checkpoint(teacher: nn.Module, checkpoint: str) -> None:
    """Load every parameter and buffer of ``teacher`` from ``checkpoint``.

    ``checkpoint`` is anything mmengine's CheckpointLoader reads (a path, ``http(s)://``,
    ``torchvision://``, ``open-mmlab://``), loaded safely (:mod:`mmdet_compconv.checkpoint`):
    an mmdet/mmengine checkpoint (``state_dict`` inside), a plain state dict, or for a backbone
    teacher a detector or mmpretrain classifier checkpoint (keys under ``backbone.``). Keys the
    teacher does not have (a classifier's ``fc``) are logged and ignored.

    Raises:
        ValueError: a teacher tensor is missing from the checkpoint or has another shape; the
            message lists the missing, mismatched and unexpected keys.

    Example:
        >>> import os, tempfile, torch.nn as nn
        >>> path = os.path.join(tempfile.mkdtemp(), 'w.pth')
        >>> torch.save(nn.Linear(2, 2).state_dict(), path)
        >>> load_teacher_checkpoint(nn.Linear(2, 2), path)  # doctest: +ELLIPSIS
        Loads checkpoint by local backend from path: ...
        >>> load_teacher_checkpoint(nn.Linear(2, 3), path)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: teacher checkpoint ... does not fit the teacher Linear: 0 missing keys [], 2 with another shape ['weight: checkpoint (2, 2) vs teacher (3, 2)', 'bias: checkpoint (2,) vs teacher (3,)'], 0 unexpected keys []
    """  # noqa: E501
    ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    if not isinstance(ckpt, dict):
        raise ValueError(f'teacher checkpoint {checkpoint!r} holds a {type(ckpt).__name__}, not '
                         f'a state dict')
    own = teacher.state_dict()
    state_dict = _fit_prefix(ckpt.get('state_dict', ckpt), own)
    missing = [k for k in own if k not in state_dict and not k.endswith('num_batches_tracked')]
    mismatched = [f'{k}: checkpoint {tuple(state_dict[k].shape)} vs teacher {tuple(v.shape)}'
                  for k, v in own.items() if k in state_dict and state_dict[k].shape != v.shape]
    unexpected = [k for k in state_dict if k not in own]
    if missing or mismatched:
        raise ValueError(
            f'teacher checkpoint {checkpoint!r} does not fit the teacher '
            f'{type(teacher).__name__}: {len(missing)} missing keys {missing[:10]}, '
            f'{len(mismatched)} with another shape {mismatched[:10]}, {len(unexpected)} '
            f'unexpected keys {unexpected[:10]}')
    teacher.load_state_dict({k: v for k, v in state_dict.items() if k in own}, strict=False)
    print_log(f'teacher {type(teacher).__name__}: loaded all {len(own)} tensors from '
              f'{checkpoint}' + (f'; ignored {len(unexpected)} checkpoint keys it does not '
                                 f'have: {unexpected[:10]}' if unexpected else ''),
              logger='current', level=logging.INFO)
