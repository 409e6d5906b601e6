"""Glue with mmengine: ``register_all_modules`` (``mmengine.hub.get_model`` looks for it in
``PKG.utils``), the ``mmdet_compconv`` registry scope, and the argument types of the tools."""
from mmdet.utils import register_all_modules as register_mmdet_modules

from .cli import parse_fraction, parse_size

__all__ = ['register_all_modules', 'parse_fraction', 'parse_size']


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register mmdet's modules and this package's (CompConv backbones, necks, heads).

    Args:
        init_default_scope (bool): as for mmdet's ``register_all_modules``: make ``mmdet``
            the default scope of mmengine's registries. Default: True.

    Example:
        >>> register_all_modules(init_default_scope=False)
        >>> from mmdet.registry import MODELS
        >>> MODELS.get('CompConvFPN').__name__
        'CompConvFPN'
    """
    register_mmdet_modules(init_default_scope)
    from .. import models  # noqa: F401
    from . import registry  # noqa: F401
