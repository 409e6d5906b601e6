"""Let ``mmengine.hub`` and ``mmdet_compconv::`` config paths find this package.

mmengine 0.10.7 resolves ``PKG::path`` (``Config.fromfile``, ``mmengine.hub.get_config`` and
``get_model``) only for the packages in its hard-coded ``MODULE2PACKAGE`` dict, and locates a
package's files with ``pkg_resources``, which for an editable (PEP 660) install points to
site-packages, where the package is not. :func:`register` (run by ``import mmdet_compconv``)
adds ``mmdet_compconv`` to that dict and answers its location from this package's
``__file__``; other packages are looked up as before. The files mmengine then reads are those
of ``mmdet_compconv/.mim/`` (``model-index.yml``, ``configs/``), which ``setup.py`` links
(editable install) or copies (wheel, sdist) there, as mmdet's does.

So, after ``import mmdet_compconv``::

    cfg = mmengine.hub.get_config('mmdet_compconv::shapes/retinanet_r18_fpn_shapes.py',
                                  pretrained=True)   # cfg.model_path: the metafile's Weights
    model = mmengine.hub.get_model('mmdet_compconv::shapes/retinanet_r18_fpn_shapes.py',
                                   pretrained=True)  # downloaded, hash-checked, loaded

``mim`` runs in its own process and cannot be told; see ``docs/model_zoo.md``.

Example:
    >>> from mmengine.config.utils import MODULE2PACKAGE
    >>> register()
    >>> MODULE2PACKAGE['mmdet_compconv']
    'mmdet_compconv'
    >>> import mmengine.hub.hub
    >>> mmengine.hub.hub.get_installed_path('mmdet_compconv') == PACKAGE_DIR
    True
"""
from __future__ import annotations

import functools
import os.path as osp
from typing import Callable

import mmengine.config.config as mmengine_config
import mmengine.hub.hub as mmengine_hub
from mmengine.config.utils import MODULE2PACKAGE

__all__ = ['PACKAGE', 'PACKAGE_DIR', 'register']

PACKAGE = 'mmdet_compconv'
PACKAGE_DIR = osp.dirname(osp.abspath(__file__))


def _ours_first(lookup: Callable[[str], str]) -> Callable[[str], str]:
    if getattr(lookup, 'knows_mmdet_compconv', False):
        return lookup

    @functools.wraps(lookup)
    def installed_path(package: str) -> str:
        return PACKAGE_DIR if package == PACKAGE else lookup(package)

    installed_path.knows_mmdet_compconv = True
    return installed_path


def register() -> None:
    """Add this package to mmengine's ``MODULE2PACKAGE`` and package lookups. Idempotent."""
    MODULE2PACKAGE[PACKAGE] = PACKAGE
    for module in (mmengine_hub, mmengine_config):
        module.get_installed_path = _ours_first(module.get_installed_path)


register()
