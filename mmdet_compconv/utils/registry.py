"""The ``mmdet_compconv`` registry scope, a child of mmdet's.

``mmengine.hub.get_model('mmdet_compconv::...')`` builds the model with the default scope set
to the package name (``mmdet_compconv``); mmengine then looks for a registry of that scope in
its tree. This child of mmdet's ``MODELS`` is that registry: it holds nothing of its own (the
CompConv modules live in mmdet's registry, so ``mmdet::`` configs find them) and answers every
type from its parent.

Example:
    >>> import mmdet_compconv  # noqa: F401  registers the CompConv modules
    >>> MODELS.get('CompConvResNet').__name__, MODELS.get('RetinaNet').__name__
    ('CompConvResNet', 'RetinaNet')
"""
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.registry import Registry

__all__ = ['MODELS']

MODELS = Registry('model', parent=MMDET_MODELS, scope='mmdet_compconv',
                  locations=['mmdet_compconv.models'])
