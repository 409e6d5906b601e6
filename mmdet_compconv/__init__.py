"""mmdet-compconv: CompConv detectors for MMDetection.

Importing this package registers ``CompConv`` in mmengine's root ``MODELS`` registry (so
``conv_cfg=dict(type='CompConv')`` works in any scope), the CompConv backbones, necks, heads,
distiller and datasets in mmdet's registries, and installs the changes it makes to mmengine and
mmcv (:mod:`mmdet_compconv.patches`: safe, hash-checked checkpoint loading; ConvModule options
a CompConv cannot take refused at build time; ``mmdet_compconv::`` config paths).

Subpackages, from the bottom up (each imports only those before it):

* :mod:`.cnn`: the operator and its PyTorch inference forms;
* :mod:`.checkpoint`: safe, hash-verified loading with coverage reports;
* :mod:`.datasets`: the generated shapes dataset and unlabeled images;
* :mod:`.models`: mmdet backbones, necks, heads, the distiller and its loss;
* :mod:`.apis`: building detectors from configs, running mmdet's tools;
* :mod:`.deployment`: the export form, ONNX, CPU runtimes, benchmarks;
* :mod:`.zoo`: metafiles and published checkpoints;
* :mod:`.utils`: mmengine glue (``register_all_modules``, the registry scope, CLI types).
"""
from . import datasets, models, patches  # noqa: F401  (register the mmdet modules, datasets)
from .cnn import (CompConv, CompConvPlan, DeployedCompConv, adaptive_depth, collapse_pointwise,
                  compconv_macs, compconv_params, consuming_norm, conv_layers, conv_macs,
                  count_macs, foldable, plan_channels, shuffle_permutation, switch_to_deploy)
from .utils import registry  # noqa: F401  (the mmdet_compconv scope, for mmengine.hub)

patches.install()

__version__ = '0.1.0'

__all__ = [
    'CompConv', 'CompConvPlan', 'adaptive_depth', 'plan_channels', 'shuffle_permutation',
    'compconv_macs', 'compconv_params', 'conv_layers', 'conv_macs', 'count_macs',
    'DeployedCompConv', 'collapse_pointwise', 'consuming_norm', 'foldable', 'switch_to_deploy',
    '__version__'
]
