"""mmdet-compconv: CompConv detectors for MMDetection.

Importing this package registers ``CompConv`` in mmengine's root ``MODELS`` registry (so
``conv_cfg=dict(type='CompConv')`` works in any scope) and the CompConv backbones, necks and
heads in mmdet's ``MODELS`` registry, and makes mmengine load checkpoints with
``weights_only=True`` plus what its own Runner checkpoints need (:mod:`.checkpoint`).
"""
from .compconv import CompConv, CompConvPlan, adaptive_depth, plan_channels, shuffle_permutation
from .deploy import DeployedCompConv, collapse_pointwise, switch_to_deploy
from .complexity import compconv_macs, compconv_params, conv_layers, conv_macs, count_macs
from . import checkpoint  # noqa: F401  (safe checkpoint loading on torch >= 2.6)
from . import models  # noqa: F401  (registers the mmdet modules)
from . import datasets  # noqa: F401  (registers the datasets)

__version__ = '0.1.0'

__all__ = [
    'CompConv', 'CompConvPlan', 'adaptive_depth', 'plan_channels', 'shuffle_permutation',
    'compconv_macs', 'compconv_params', 'conv_layers', 'conv_macs', 'count_macs',
    'DeployedCompConv', 'collapse_pointwise', 'switch_to_deploy', '__version__'
]
