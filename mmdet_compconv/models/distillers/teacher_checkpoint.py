"""Loading a teacher's weights, refusing a checkpoint that does not fit the teacher."""
from __future__ import annotations

import logging
import re

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict

__all__ = ['CLASSIFIER_PREFIXES', 'load_teacher_checkpoint']

#: Checkpoint keys a backbone teacher may leave unused: the classifier of an ImageNet model
#: (torchvision's ``fc.*``, mmpretrain's ``head.*``).
CLASSIFIER_PREFIXES = ('fc.', 'head.')


def load_teacher_checkpoint(teacher: nn.Module, checkpoint: str) -> None:
    """Load every parameter and buffer of ``teacher`` from ``checkpoint``, exactly.

    ``checkpoint`` is anything mmengine's ``CheckpointLoader`` reads (a path, ``http(s)://``,
    ``torchvision://``, ``open-mmlab://``), loaded safely (:mod:`mmdet_compconv.checkpoint`):
    an mmdet/mmengine checkpoint (``state_dict`` inside), a plain state dict, or, for a backbone
    teacher, a detector or mmpretrain classifier checkpoint (its keys under ``backbone.`` are
    taken, as mmengine's ``Pretrained`` init with ``prefix='backbone.'`` does). DDP's
    ``module.`` prefix is removed, as mmengine's ``load_checkpoint`` does. The only keys that may
    be left unused are a classifier's (:data:`CLASSIFIER_PREFIXES`); they are logged. Any other
    difference (a missing key, another shape, an unused key such as the extra blocks of a deeper
    ResNet) is an error, reported by mmengine's ``load_state_dict(strict=True)``.

    Args:
        teacher (nn.Module): the teacher model (a backbone or a detector).
        checkpoint (str): where its weights are.

    Raises:
        ValueError: the checkpoint is not a state dict, or does not fit the teacher; the
            message names the checkpoint and lists the keys.

    Example:
        >>> import os, tempfile, torch, torch.nn as nn
        >>> path = os.path.join(tempfile.mkdtemp(), 'w.pth')
        >>> torch.save(nn.Linear(2, 2).state_dict(), path)
        >>> teacher = nn.Linear(2, 3)
        >>> load_teacher_checkpoint(teacher, path)  # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        ValueError: teacher checkpoint ... does not fit the teacher Linear: ...size mismatch for
        weight: copying a param with shape torch.Size([2, 2]) from checkpoint...
    """
    ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    if not isinstance(ckpt, dict):
        raise ValueError(f'teacher checkpoint {checkpoint!r} holds a {type(ckpt).__name__}, not '
                         f'a state dict')
    state = {re.sub(r'^module\.', '', k): v for k, v in ckpt.get('state_dict', ckpt).items()}
    own = teacher.state_dict()
    if not any(k.startswith('backbone.') for k in own) and any(
            k.startswith('backbone.') for k in state):
        state = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    ignored = [k for k in state if k not in own and k.startswith(CLASSIFIER_PREFIXES)]
    state = {k: v for k, v in state.items() if k not in ignored}
    try:
        load_state_dict(teacher, state, strict=True)
    except RuntimeError as e:
        raise ValueError(f'teacher checkpoint {checkpoint!r} does not fit the teacher '
                         f'{type(teacher).__name__}: {e}') from e
    print_log(f'teacher {type(teacher).__name__}: loaded all {len(own)} tensors from '
              f'{checkpoint}' + (f'; ignored the {len(ignored)} classifier keys it does not '
                                 f'have: {ignored[:10]}' if ignored else ''),
              logger='current', level=logging.INFO)
