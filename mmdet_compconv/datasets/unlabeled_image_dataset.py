"""Images without labels, for distillation: a folder searched recursively, or a COCO file."""
from __future__ import annotations

import logging
import os
import os.path as osp
from typing import List, Optional, Sequence

import mmcv
from mmengine.dataset import BaseDataset
from mmengine.fileio import exists, get, load
from mmengine.logging import print_log
from mmdet.registry import DATASETS

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')


def _decodes(path: str) -> bool:
    try:
        return mmcv.imfrombytes(get(path)) is not None
    except Exception:  # any failure to read or decode: not an image we can use
        return False


def image_files(folder: str, extensions: Sequence[str]) -> List[str]:
    """The files under ``folder`` whose names end in ``extensions`` (any case), sorted.

    Symbolic links to folders are followed (a folder reached twice, e.g. through a link loop,
    is read once).

    Args:
        folder (str): the folder.
        extensions (Sequence[str]): lower-case name endings, e.g. ``('.png', '.jpg')``.

    Returns:
        list[str]: the paths.
    """
    found, seen = [], set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = osp.realpath(root)
        if real in seen:
            dirs[:] = []  # a loop, or a folder linked twice
            continue
        seen.add(real)
        found += [osp.join(root, f) for f in files if f.lower().endswith(tuple(extensions))
                  and osp.isfile(osp.join(root, f))]
    return sorted(found)


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

    # No classes: a checkpoint trained on these images carries the dataset's metainfo, and
    # mmdet's inference tools take ``classes`` from it (an empty tuple breaks their drawing).
    # A detector distillation config passes the teacher's ``metainfo=dict(classes=...)``.
    METAINFO: dict = dict()

    def __init__(self,
                 data_root: str,
                 ann_file: str = '',
                 data_prefix: Optional[dict] = None,
                 extensions=IMG_EXTENSIONS,
                 **kwargs) -> None:
        data_prefix = dict(img='') if data_prefix is None else data_prefix
        if not isinstance(data_prefix, dict) or set(data_prefix) != {'img'}:
            raise ValueError(f"UnlabeledImageDataset: data_prefix must be dict(img=SUBFOLDER), "
                             f"got data_prefix={data_prefix!r}")
        if osp.isfile(data_root):
            raise NotADirectoryError(f'UnlabeledImageDataset: data_root={data_root!r} is a file, '
                                     f'not a folder')
        self.extensions = tuple(e.lower() for e in extensions)
        self.num_skipped = 0
        super().__init__(data_root=data_root, ann_file=ann_file, data_prefix=data_prefix,
                         **kwargs)

    def load_data_list(self) -> List[dict]:
        """The image paths, sorted (folder) or in the annotation file's order."""
        if self.ann_file:
            paths, source = self._listed_images(), f'ann_file={self.ann_file!r}'
        else:
            folder = osp.normpath(self.data_prefix['img'] or self.data_root)
            if not osp.isdir(folder):
                raise FileNotFoundError(f'UnlabeledImageDataset: image folder {folder!r} does '
                                        f'not exist (looked for {osp.abspath(folder)!r})')
            paths = image_files(folder, self.extensions)
            source = f'folder {folder!r} (recursively, following links, extensions ' \
                     f'{self.extensions})'
        if not paths:
            raise ValueError(f'UnlabeledImageDataset: no image in {source}')
        print_log(f'UnlabeledImageDataset: {len(paths)} images from {source}', logger='current',
                  level=logging.INFO)
        return [dict(img_path=p, img_id=i) for i, p in enumerate(paths)]

    def _listed_images(self) -> List[str]:
        """The images a COCO file lists that exist under ``data_prefix['img']``."""
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'UnlabeledImageDataset: ann_file={self.ann_file!r} '
                                    f'does not exist')
        coco = load(self.ann_file)
        if not isinstance(coco, dict) or not isinstance(coco.get('images'), list):
            raise ValueError(f'UnlabeledImageDataset: ann_file={self.ann_file!r} is not a COCO '
                             f'annotation file: it holds a {type(coco).__name__}, not a dict '
                             f'with an "images" list')
        listed = [osp.join(self.data_prefix['img'], im['file_name']) for im in coco['images']]
        paths = [p for p in listed if exists(p)]
        if listed and not paths:
            raise FileNotFoundError(
                f'UnlabeledImageDataset: 0 of the {len(listed)} images listed in '
                f'{self.ann_file!r} exist under {self.data_prefix["img"]!r} (e.g. {listed[0]!r}): '
                f'check data_root and data_prefix=dict(img=...)')
        if len(paths) < len(listed):
            have = set(paths)
            missing = next(p for p in listed if p not in have)
            print_log(f'UnlabeledImageDataset: {len(listed) - len(paths)} of the {len(listed)} '
                      f'images listed in {self.ann_file!r} do not exist (e.g. {missing!r}); '
                      f'using the other {len(paths)}', logger='current', level=logging.WARNING)
        return paths

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
