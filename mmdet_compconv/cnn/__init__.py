"""The CompConv operator and its inference forms: plain PyTorch, no mmdet model inside.

* :mod:`.plan`: the channel plan (spec §2) and channel-order helpers;
* :mod:`.functional`: the recursion (spec §3), written once for every form;
* :mod:`.compconv`: :class:`CompConv`, the train form, registered in mmengine's root
  ``MODELS`` (so ``conv_cfg=dict(type='CompConv')`` works in every scope);
* :mod:`.fusion`: BatchNorm folding and 1x1 collapse, shared by the inference forms;
* :mod:`.deployed_compconv` and :mod:`.deploy`: the PyTorch inference form and
  :func:`switch_to_deploy`;
* :mod:`.complexity`: analytic and counted MACs and parameters (spec §4);
* :mod:`.conv_module_guard`: the mmcv ``ConvModule`` options a CompConv cannot take.
"""
from .complexity import (ConvLayer, compconv_macs, compconv_params, conv_layers, conv_macs,
                         count_macs, dense_macs)
from .compconv import CompConv
from .conv_module_guard import builds_compconv, check_conv_module_options
from .deploy import switch_to_deploy
from .deployed_compconv import DeployedCompConv
from .fusion import (COLLAPSE_ABOVE, collapse_pointwise, collapses, consuming_norm, foldable,
                     norm_affine, take_consuming_norm)
from .plan import CompConvPlan, adaptive_depth, plan_channels, shuffle_permutation

__all__ = [
    'CompConv', 'CompConvPlan', 'adaptive_depth', 'plan_channels', 'shuffle_permutation',
    'DeployedCompConv', 'switch_to_deploy', 'COLLAPSE_ABOVE', 'collapse_pointwise', 'collapses',
    'consuming_norm', 'foldable', 'norm_affine', 'take_consuming_norm', 'ConvLayer',
    'compconv_macs', 'compconv_params', 'conv_layers', 'conv_macs', 'count_macs', 'dense_macs',
    'builds_compconv', 'check_conv_module_options'
]
