"""``register_all_modules``, where ``mmengine.hub.get_model`` looks for it (``PKG.utils``)."""
from mmdet.utils import register_all_modules as register_mmdet_modules

__all__ = ['register_all_modules']


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register mmdet's modules and this package's (CompConv backbones, necks, heads).

    Args:
        init_default_scope: as for mmdet's ``register_all_modules``: make ``mmdet`` the
            default scope.

    Example:
        >>> register_all_modules(init_default_scope=False)
        >>> from mmdet.registry import MODELS
        >>> MODELS.get('CompConvFPN').__name__
        'CompConvFPN'
    """
    register_mmdet_modules(init_default_scope)
    from . import models, registry  # noqa: F401
