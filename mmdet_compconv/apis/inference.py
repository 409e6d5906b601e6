"""Building a detector from a config (and a checkpoint) for the tools: mmdet's ``init_detector``."""
from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Optional, Union

import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MMLogger

__all__ = ['init_model']


def init_model(config: Union[str, Path, Config],
               checkpoint: Optional[str] = None,
               cfg_options: Optional[dict] = None,
               device: str = 'cpu',
               strict: bool = True) -> nn.Module:
    """A detector in eval mode, built by ``mmdet.apis.init_detector``.

    Two differences from ``init_detector``: the checkpoint must fit the model exactly unless
    ``strict=False`` (mmengine's ``load_checkpoint(strict=True)`` names the missing, unexpected
    and mismatched keys), and without a checkpoint the model gets its config's initialisation
    (``init_weights``) instead of PyTorch's defaults. The backbone's ``init_cfg`` is never run
    (no pretrained download), also when ``cfg_options`` are given.

    Args:
        config (str | Path | Config): the config file or object (not modified).
        checkpoint (str, optional): weights to load (any mmengine scheme). Default: None.
        cfg_options (dict, optional): overrides merged into the config. Default: None.
        device (str): where to put the model. Default: 'cpu'.
        strict (bool): refuse a checkpoint that does not fit. Default: True.

    Returns:
        nn.Module: the detector, with ``cfg`` and ``dataset_meta`` (from the checkpoint's meta
        when it has them) set.

    Raises:
        RuntimeError: with ``strict``, the checkpoint does not fit; the message lists the keys.

    Example:
        >>> model = init_model('configs/shapes/retinanet_compconv128-r18_fpn_shapes.py')
        >>> type(model.backbone).__name__, model.training
        ('CompConvResNet', False)
    """
    import warnings

    from mmdet.apis import init_detector
    from mmengine.runner import load_checkpoint

    config = Config.fromfile(config) if isinstance(config, (str, Path)) else copy.deepcopy(config)
    if cfg_options:
        config.merge_from_dict(cfg_options)
    # record=True: init_detector sets its own filter before warning 'checkpoint is None, use
    # COCO classes'; the classes come from the checkpoint below (or do not matter)
    with warnings.catch_warnings(record=True):
        model = init_detector(config, None, device=device)  # clears the backbone's init_cfg
    if checkpoint is None:
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)  # init_weights logs every parameter
        try:
            model.init_weights()
        finally:
            logger.setLevel(level)
        return model.eval()
    ckpt = load_checkpoint(model, checkpoint, map_location='cpu', strict=strict)
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    if 'dataset_meta' in meta:
        model.dataset_meta = {k.lower(): v for k, v in meta['dataset_meta'].items()}
    return model.to(device).eval()
