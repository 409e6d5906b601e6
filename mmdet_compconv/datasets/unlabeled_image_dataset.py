"""Images without labels, for distillation: a folder searched recursively, or a COCO file."""
from __future__ import annotations

import logging
import os.path as osp
from pathlib import Path
from typing import List, Optional

import mmcv
from mmengine.dataset import BaseDataset
from mmengine.fileio import get, load
from mmengine.logging import print_log
from mmdet.registry import DATASETS

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')


def _decodes(path: str) -> bool:
    try:
        return mmcv.imfrombytes(get(path)) is not None
    except Exception:  # any failure to read or decode: not an image we can use
        return False


@DATASETS.register_module()
class UnlabeledImageDataset(BaseDataset):
    """Every image of a folder (recursively) or of a COCO annotation file, labels ignored.

    Each item is ``dict(img_path=..., img_id=i)`` run through ``pipeline`` (mmdet/mmcv
    transforms, e.g. ``LoadImageFromFile``, ``Resize``, ``PackDetInputs``). An image the pipeline
    fails on because it does not decode is skipped (mmengine's BaseDataset then draws another
    index), logged with its path and counted in ``num_skipped`` (per worker process); an error
    on a decodable image is raised as usual.

    Args:
        data_root (str): the folder searched recursively for ``extensions`` (without
            ``ann_file`` and ``data_prefix``), and the root that a relative ``ann_file`` and
            ``data_prefix['img']`` are joined to.
        ann_file (str): a COCO json whose ``images[].file_name`` are read (under
            ``data_prefix['img']``), in its order; its annotations are ignored.
            Default: '' (no file: search the image folder).
        data_prefix (dict, optional): ``dict(img=subfolder)``: the folder searched (without
            ``ann_file``), or the one the file names of ``ann_file`` are relative to.
            Default: None (``dict(img='')``: ``data_root`` itself).
        extensions (Sequence[str]): the file suffixes (last suffix, with its dot) counted as
            images when searching a folder, case-insensitive. Default: ``IMG_EXTENSIONS``
            (``.jpg``, ``.jpeg``, ``.png``, ``.ppm``, ``.bmp``, ``.pgm``, ``.tif``, ``.tiff``,
            ``.webp``).
        **kwargs: the other arguments of mmengine's ``BaseDataset`` (``pipeline``,
            ``indices``, ``max_refetch``...).

    Raises:
        FileNotFoundError: the image folder or ``ann_file`` does not exist.
        ValueError: no image was found.

    Example:
        >>> import os, tempfile, numpy as np, mmcv
        >>> root = tempfile.mkdtemp()
        >>> os.makedirs(f'{root}/a/b')
        >>> mmcv.imwrite(np.zeros((8, 8, 3), np.uint8), f'{root}/a/b/x.png')
        True
        >>> ds = UnlabeledImageDataset(data_root=root,
        ...                            pipeline=[dict(type='LoadImageFromFile')])
        >>> len(ds), ds[0]['img'].shape
        (1, (8, 8, 3))
    """

    METAINFO: dict = dict(classes=())

    def __init__(self,
                 data_root: str,
                 ann_file: str = '',
                 data_prefix: Optional[dict] = None,
                 extensions=IMG_EXTENSIONS,
                 **kwargs) -> None:
        self.extensions = tuple(e.lower() for e in extensions)
        self.num_skipped = 0
        super().__init__(data_root=data_root, ann_file=ann_file,
                         data_prefix=data_prefix or dict(img=''), **kwargs)

    def load_data_list(self) -> List[dict]:
        """The image paths, sorted (folder) or in the annotation file's order."""
        if self.ann_file:
            if not osp.isfile(self.ann_file):
                raise FileNotFoundError(f'UnlabeledImageDataset: ann_file={self.ann_file!r} '
                                        f'does not exist')
            images = load(self.ann_file).get('images', [])
            paths = [osp.join(self.data_prefix['img'], im['file_name']) for im in images]
            source = f'the "images" of ann_file={self.ann_file!r}'
        else:
            folder = Path(self.data_prefix['img'] or self.data_root)
            if not folder.is_dir():
                raise FileNotFoundError(f'UnlabeledImageDataset: image folder {str(folder)!r} '
                                        f'does not exist (looked for {str(folder.resolve())!r})')
            paths = sorted(str(p) for p in folder.rglob('*')
                           if p.suffix.lower() in self.extensions and p.is_file())
            source = f'folder {str(folder)!r} (recursively, extensions {self.extensions})'
        if not paths:
            raise ValueError(f'UnlabeledImageDataset: no image in {source}')
        return [dict(img_path=p, img_id=i) for i, p in enumerate(paths)]

    def prepare_data(self, idx: int):
        """The pipeline's output, or None (skip) when the image does not decode."""
        try:
            return super().prepare_data(idx)
        except Exception:
            path = self.get_data_info(idx)['img_path']
            if _decodes(path):
                raise
        self.num_skipped += 1
        print_log(f'UnlabeledImageDataset: skipped {path!r}, which does not decode as an '
                  f'image ({self.num_skipped} skipped so far in this process)',
                  logger='current', level=logging.WARNING)
        return None
