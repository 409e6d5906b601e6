"""mmdet modules built on CompConv, registered in ``mmdet.registry.MODELS`` on import."""
