"""Every change this package makes to other libraries, installed by one call: :func:`install`.

``import mmdet_compconv`` calls :func:`install` once; it is idempotent. Each patch names the
library version it was written for and why it is needed; what the patch calls lives in the
subsystem it belongs to. Extensions made through a library's public API (mmengine's
``CheckpointLoader.register_scheme``) are installed here too, so this is the one list of what
importing the package changes outside it.

1. **Checkpoint loading** (mmengine 0.10.7, torch >= 2.6), see
   :mod:`mmdet_compconv.checkpoint.loading`:

   * the local-path scheme ``''`` of mmengine's ``CheckpointLoader`` becomes
     :func:`~mmdet_compconv.checkpoint.load_from_local` (public API: ``register_scheme``);
   * ``mmengine.runner.checkpoint.load_url`` is rebound to
     :func:`~mmdet_compconv.checkpoint.load_url`: mmengine's ``load_from_http`` (and through it
     ``torchvision://``, ``open-mmlab://``, ``mmcls://``) downloads with that module-level name,
     so one binding covers every URL scheme. mmengine offers no public hook for it.

2. **mmcv's ConvModule** (mmcv 2.1): ``ConvModule.__init__`` and
   ``ConvModule.turn_on_efficient_conv_bn_eval`` are wrapped so that the options a CompConv
   cannot take fail at build time with a message naming them
   (:func:`~mmdet_compconv.cnn.check_conv_module_options`); every other ConvModule is built as
   before.

3. **mmengine.hub and ``mmdet_compconv::`` config paths** (mmengine 0.10.7): mmengine resolves
   ``PKG::path`` only for the packages of its hard-coded ``MODULE2PACKAGE`` dict and finds their
   files with ``pkg_resources``, which for an editable (PEP 660) install points to
   site-packages, where the package is not. ``mmdet_compconv`` is added to that dict and
   ``get_installed_path`` of ``mmengine.hub.hub`` and ``mmengine.config.config`` answers this
   package's folder; other packages are looked up as before. mmengine then reads
   ``mmdet_compconv/.mim/`` (``model-index.yml``, ``configs/``), which ``setup.py`` links or
   copies there, as mmdet's does (see ``docs/model_zoo.md``).

Example:
    >>> install()
    >>> from mmengine.config.utils import MODULE2PACKAGE
    >>> MODULE2PACKAGE['mmdet_compconv']
    'mmdet_compconv'
    >>> import mmengine.hub.hub
    >>> mmengine.hub.hub.get_installed_path('mmdet_compconv') == PACKAGE_DIR
    True
"""
from __future__ import annotations

import functools
import inspect
import os.path as osp
from typing import Any, Callable

__all__ = ['PACKAGE', 'PACKAGE_DIR', 'install']

PACKAGE = 'mmdet_compconv'
PACKAGE_DIR = osp.dirname(osp.abspath(__file__))

_MARK = '_mmdet_compconv_patch'


def _marked(function: Callable) -> Callable:
    setattr(function, _MARK, True)
    return function


def _is_patched(function: Callable) -> bool:
    return getattr(function, _MARK, False)


def _install_checkpoint_loaders() -> None:
    import mmengine.runner.checkpoint as mmengine_checkpoint
    from mmengine.runner.checkpoint import CheckpointLoader

    from .checkpoint import load_from_local, load_url
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
    mmengine_checkpoint.load_url = load_url


def _install_conv_module_checks() -> None:
    from mmcv.cnn import ConvModule

    from .cnn import CompConv, check_conv_module_options
    if _is_patched(ConvModule.__init__):
        return
    init, turn_on = ConvModule.__init__, ConvModule.turn_on_efficient_conv_bn_eval
    signature = inspect.signature(init)

    @functools.wraps(init)
    def checked_init(self: ConvModule, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        check_conv_module_options(a['conv_cfg'], a['with_spectral_norm'], a['padding_mode'],
                                  a['efficient_conv_bn_eval'])
        init(self, *args, **kwargs)

    @functools.wraps(turn_on)
    def checked_turn_on(self: ConvModule, efficient_conv_bn_eval: bool = True) -> None:
        if efficient_conv_bn_eval and isinstance(getattr(self, 'conv', None), CompConv):
            check_conv_module_options(dict(type=CompConv), efficient_conv_bn_eval=True)
        turn_on(self, efficient_conv_bn_eval)

    ConvModule.__init__ = _marked(checked_init)
    ConvModule.turn_on_efficient_conv_bn_eval = _marked(checked_turn_on)


def _install_package_lookup() -> None:
    import mmengine.config.config as mmengine_config
    import mmengine.hub.hub as mmengine_hub
    from mmengine.config.utils import MODULE2PACKAGE

    MODULE2PACKAGE[PACKAGE] = PACKAGE
    for module in (mmengine_hub, mmengine_config):
        lookup = module.get_installed_path
        if _is_patched(lookup):
            continue

        @functools.wraps(lookup)
        def installed_path(package: str, lookup: Callable[[str], str] = lookup) -> str:
            return PACKAGE_DIR if package == PACKAGE else lookup(package)

        module.get_installed_path = _marked(installed_path)


def install() -> None:
    """Install every patch of this module's list. Idempotent.

    Example:
        >>> from mmengine.runner.checkpoint import CheckpointLoader
        >>> from mmdet_compconv.checkpoint import load_from_local
        >>> install()
        >>> CheckpointLoader._get_checkpoint_loader('work_dirs/epoch_1.pth') is load_from_local
        True
    """
    _install_checkpoint_loaders()
    _install_conv_module_checks()
    _install_package_lookup()
