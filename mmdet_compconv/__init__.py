"""mmdet-compconv: CompConv detectors for MMDetection.

Importing this package registers ``CompConv`` in mmengine's root ``MODELS`` registry (so
``conv_cfg=dict(type='CompConv')`` works in any scope) and the CompConv backbones, necks and
heads in mmdet's ``MODELS`` registry, makes mmengine load checkpoints with
``weights_only=True`` plus what its own Runner checkpoints need (:mod:`.checkpoint`), verifying
zoo checkpoints against the hash in their names (:mod:`.checksum`), makes mmcv's
``ConvModule`` refuse at build time the options a CompConv cannot take
(:mod:`.conv_module_guard`), and lets ``mmengine.hub`` and ``mmdet_compconv::`` config paths
find this package (:mod:`.hub`).
"""
from .compconv import CompConv, CompConvPlan, adaptive_depth, plan_channels, shuffle_permutation
from .deploy import (DeployedCompConv, collapse_pointwise, consuming_norm, foldable,
                     switch_to_deploy)
from .complexity import compconv_macs, compconv_params, conv_layers, conv_macs, count_macs
from . import checkpoint  # noqa: F401  (safe checkpoint loading on torch >= 2.6)
from . import conv_module_guard  # noqa: F401  (ConvModule options CompConv cannot take)
from . import models  # noqa: F401  (registers the mmdet modules)
from . import datasets  # noqa: F401  (registers the datasets)
from . import hub, registry  # noqa: F401  (mmengine.hub and mmdet_compconv:: config paths)

__version__ = '0.1.0'

__all__ = [
    'CompConv', 'CompConvPlan', 'adaptive_depth', 'plan_channels', 'shuffle_permutation',
    'compconv_macs', 'compconv_params', 'conv_layers', 'conv_macs', 'count_macs',
    'DeployedCompConv', 'collapse_pointwise', 'consuming_norm', 'foldable', 'switch_to_deploy',
    '__version__'
]
