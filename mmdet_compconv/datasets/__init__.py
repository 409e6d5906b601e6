"""Datasets, registered in ``mmdet.registry.DATASETS`` on import."""
from .unlabeled_image_dataset import UnlabeledImageDataset

__all__ = ['UnlabeledImageDataset']
