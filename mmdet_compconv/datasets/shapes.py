"""A generated COCO-format detection dataset of geometric shapes ("shapes").

Every image is drawn from its own random generator, seeded by ``(seed, split, index)``, so
a dataset is a pure function of its arguments: the same seed gives the same pixels and the
same annotations, image by image, on any machine with the same numpy and OpenCV.

An image has a varied background (flat, linear or radial gradient, smooth noise, stripes,
checkerboard), distractors that are not objects (lines, arcs, scribbles, dots, letters), one
to ``max_objects`` filled shapes of the classes in :data:`CLASSES` (or another set of
:data:`SHAPE_KINDS`, e.g. :data:`OTHER_CLASSES` for a pretraining task) with sizes from
``min_size`` to ``max_size`` pixels (log-uniform, so small objects are common), overlapping
each other (an object may lose up to ``max_occlusion`` of its pixels to later ones), some
thin clutter drawn over the objects, Gaussian noise and sometimes a blur.

Annotations are modal, as in COCO: ``bbox`` is the tight box ``[x, y, w, h]`` of the visible
pixels of an object, ``area`` their count and ``segmentation`` their compressed RLE.

Example:
    >>> import tempfile
    >>> from pycocotools.coco import COCO
    >>> out = tempfile.mkdtemp()
    >>> paths = make_dataset(out, num_train=2, num_val=1, size=128, seed=0, verbose=False)
    >>> coco = COCO(paths['val'])  # doctest: +ELLIPSIS
    loading annotations into memory...
    ...
    >>> [c['name'] for c in coco.loadCats(coco.getCatIds())]
    ['circle', 'square', 'triangle', 'star', 'ellipse']
"""
from __future__ import annotations

import json
import math
import os
import os.path as osp
import string
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

CLASSES: Tuple[str, ...] = ('circle', 'square', 'triangle', 'star', 'ellipse')
# A disjoint class set: a *different* task on the same kind of images, as ImageNet is to COCO
# (used to pretrain the teachers of the backbone-only distillation flow, configs/distill/).
OTHER_CLASSES: Tuple[str, ...] = ('pentagon', 'hexagon', 'cross', 'rhombus', 'arrow')
SHAPE_KINDS: Tuple[str, ...] = CLASSES + OTHER_CLASSES
PALETTE: List[Tuple[int, int, int]] = [(220, 20, 60), (0, 130, 200), (60, 180, 75),
                                       (255, 165, 0), (145, 30, 180)]
SPLITS: Tuple[str, ...] = ('train', 'val')
_SHIFT = 4  # sub-pixel bits for cv2 polygon drawing
_LETTERS = 'ABEFHKLMNRTWXYZ'


@dataclass(frozen=True)
class ShapesConfig:
    """How images are drawn.

    Attributes:
        size: image width and height in pixels.
        min_objects: fewest objects per image.
        max_objects: most objects per image.
        min_size: smallest object diameter (of the circumscribed circle) in pixels.
        max_size: largest object diameter; ``None`` means 0.6 of the image size.
        max_occlusion: the largest fraction of an object's pixels later objects may cover.
        min_visible_side: an occluded object must keep a visible box at least this wide
            and high.
        max_distractors: most distractors per image.
        max_noise: the largest standard deviation of the Gaussian pixel noise.
        classes: the object classes, names from :data:`SHAPE_KINDS`; category ``i + 1`` is
            ``classes[i]``.
        textured: draw every background as high-contrast multi-scale colour noise and give
            every object such a texture too (other image statistics than the default's smooth
            backgrounds and mostly flat objects: a held-out task for the distillation flows);
            the default, False, draws exactly the images it always drew.
    """

    size: int = 256
    min_objects: int = 1
    max_objects: int = 8
    min_size: int = 12
    max_size: Optional[int] = None
    max_occlusion: float = 0.4
    min_visible_side: int = 6
    max_distractors: int = 8
    max_noise: float = 12.0
    classes: Tuple[str, ...] = CLASSES
    textured: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.classes, str) or not self.classes:
            raise ValueError(f'classes must be a non-empty sequence of names from {SHAPE_KINDS}, '
                             f'got {self.classes!r}')
        unknown = [c for c in self.classes if c not in SHAPE_KINDS]
        if unknown:
            raise ValueError(f'unknown shape class(es) {unknown}: choose from {SHAPE_KINDS}')
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f'classes has duplicates: {list(self.classes)}')
        object.__setattr__(self, 'classes', tuple(self.classes))

    @property
    def largest(self) -> int:
        """The effective ``max_size``."""
        return self.max_size if self.max_size is not None else int(0.6 * self.size)


@dataclass
class ShapeObject:
    """One annotated object of an image.

    Attributes:
        label: index into the dataset's classes (:attr:`ShapesConfig.classes`).
        mask: boolean visible mask, image-sized.
        full_area: pixels of the whole shape, before later objects covered some.
    """

    label: int
    mask: np.ndarray
    full_area: int

    @property
    def bbox(self) -> List[int]:
        """COCO ``[x, y, w, h]`` of the visible pixels."""
        ys, xs = np.nonzero(self.mask)
        return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                int(ys.max() - ys.min() + 1)]

    @property
    def area(self) -> int:
        """Visible pixel count."""
        return int(self.mask.sum())


def shape_polygon(label: int, center: Tuple[float, float], diameter: float, angle: float,
                  aspect: float = 0.5, classes: Sequence[str] = CLASSES) -> np.ndarray:
    """Vertices of a shape, ``(N, 2)`` float (x, y).

    Args:
        label: index into ``classes``.
        center: (x, y) of the center.
        diameter: diameter of the circumscribed circle.
        angle: rotation in radians.
        aspect: minor/major axis ratio of an ellipse or a rhombus.
        classes: the class names ``label`` indexes (from :data:`SHAPE_KINDS`).

    Example:
        >>> shape_polygon(1, (10, 10), 2 * math.sqrt(2), math.pi / 4).round(6).tolist()
        [[11.0, 11.0], [9.0, 11.0], [9.0, 9.0], [11.0, 9.0]]
    """
    name, r = classes[label], diameter / 2
    if name == 'circle':
        t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t)], 1) * r
    elif name == 'ellipse':
        t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        pts = np.stack([np.cos(t), aspect * np.sin(t)], 1) * r
    elif name in _OUTLINES:
        pts = np.asarray(_OUTLINES[name], dtype=float)
        pts = pts / np.linalg.norm(pts, axis=1).max() * r  # the circumscribed circle: r
    elif name == 'rhombus':
        pts = np.array([[1, 0], [0, aspect], [-1, 0], [0, -aspect]], dtype=float) * r
    else:
        sides = {'square': 4, 'triangle': 3, 'star': 10, 'pentagon': 5, 'hexagon': 6}[name]
        t = np.arange(sides) * 2 * math.pi / sides
        radii = np.where(np.arange(sides) % 2, 0.42, 1.0) if name == 'star' else np.ones(sides)
        pts = np.stack([np.cos(t), np.sin(t)], 1) * (radii * r)[:, None]
    c, s = math.cos(angle), math.sin(angle)
    return pts @ np.array([[c, s], [-s, c]]) + np.asarray(center, dtype=float)


_W = 0.3  # half-width of a cross's arms / an arrow's shaft, in radii
_OUTLINES: Dict[str, List[Tuple[float, float]]] = {
    'cross': [(1, _W), (_W, _W), (_W, 1), (-_W, 1), (-_W, _W), (-1, _W), (-1, -_W), (-_W, -_W),
              (-_W, -1), (_W, -1), (_W, -_W), (1, -_W)],
    'arrow': [(-1, -_W / 2), (0.1, -_W / 2), (0.1, -0.55), (1, 0), (0.1, 0.55), (0.1, _W / 2),
              (-1, _W / 2)],
}


def _fill_polygon(canvas: np.ndarray, pts: np.ndarray, color, antialias: bool = True) -> None:
    ipts = np.round(pts * (1 << _SHIFT)).astype(np.int32)[None]
    cv2.fillPoly(canvas, ipts, color, cv2.LINE_AA if antialias else cv2.LINE_8, _SHIFT)


def _random_color(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A float32 ``(size, size, 3)`` background of a random kind."""
    kind = rng.choice(['flat', 'linear', 'radial', 'smooth', 'stripes', 'checker'])
    c1, c2 = _random_color(rng), _random_color(rng)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == 'flat':
        return np.broadcast_to(c1, (size, size, 3)).copy()
    if kind == 'linear':
        a = rng.uniform(0, 2 * math.pi)
        t = xx * math.cos(a) + yy * math.sin(a)
        t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    elif kind == 'radial':
        cx, cy = rng.uniform(0, 1, 2)
        t = np.sqrt((xx - cx)**2 + (yy - cy)**2)
        t = t / max(t.max(), 1e-6)
    elif kind == 'smooth':
        cells = int(rng.integers(2, 9))
        low = rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32)
        return cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 255)
    elif kind == 'stripes':
        a, period = rng.uniform(0, math.pi), rng.uniform(0.03, 0.2)
        t = 0.5 + 0.5 * np.sin(2 * math.pi * (xx * math.cos(a) + yy * math.sin(a)) / period)
        c2 = c1 + (c2 - c1) * rng.uniform(0.2, 0.5)  # low-contrast texture
    else:  # checker
        n = int(rng.integers(4, 17))
        t = ((np.floor(xx * n) + np.floor(yy * n)) % 2).astype(np.float32)
        c2 = c1 + (c2 - c1) * rng.uniform(0.2, 0.5)
    return c1 + t[..., None] * (c2 - c1)


def _texture(rng: np.random.Generator, size: int, contrast: float) -> np.ndarray:
    """Zero-mean float32 ``(size, size, 3)`` colour noise of 4 octaves (cells of 1/4 to 1/32
    of the image), with the standard deviation ``contrast``."""
    out = np.zeros((size, size, 3), np.float32)
    for octave in range(4):
        cells = 4 << octave
        low = rng.normal(0, 1, (cells, cells, 3)).astype(np.float32)
        out += cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC) * 0.8**octave
    return (out - out.mean()) * (contrast / max(float(out.std()), 1e-6))


def _textured_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A float32 ``(size, size, 3)`` background: a random colour plus strong texture."""
    return (_random_color(rng) + _texture(rng, size, rng.uniform(30, 60))).clip(0, 255)


def _distractor(rng: np.random.Generator, img: np.ndarray, thin: bool = False) -> None:
    """Draws one non-object in place: a line, an arc, a scribble, dots or a letter."""
    size = img.shape[0]
    color = tuple(float(v) for v in _random_color(rng))
    kind = rng.choice(['line', 'arc', 'scribble', 'dots'] if thin else
                      ['line', 'arc', 'scribble', 'dots', 'letter'])
    width = 1 if thin else int(rng.integers(1, 4))
    if kind == 'line':
        p, q = rng.integers(0, size, (2, 2))
        cv2.line(img, tuple(int(v) for v in p), tuple(int(v) for v in q), color, width,
                 cv2.LINE_AA)
    elif kind == 'arc':
        c = tuple(int(v) for v in rng.integers(0, size, 2))
        axes = tuple(int(v) for v in rng.integers(5, size // 3, 2))
        start = float(rng.uniform(0, 360))
        cv2.ellipse(img, c, axes, float(rng.uniform(0, 180)), start,
                    start + float(rng.uniform(40, 200)), color, width, cv2.LINE_AA)
    elif kind == 'scribble':
        n = int(rng.integers(3, 8))
        pts = np.cumsum(rng.normal(0, size / 12, (n, 2)), 0) + rng.uniform(0, size, 2)
        cv2.polylines(img, [pts.astype(np.int32)[:, None]], False, color, width, cv2.LINE_AA)
    elif kind == 'dots':
        for _ in range(int(rng.integers(3, 12))):
            c = tuple(int(v) for v in rng.integers(0, size, 2))
            cv2.circle(img, c, int(rng.integers(1, 3)), color, -1, cv2.LINE_AA)
    else:
        text = ''.join(rng.choice(list(_LETTERS), int(rng.integers(1, 4))))
        org = tuple(int(v) for v in rng.integers(0, size - 10, 2) + (0, 10))
        layer = np.zeros(img.shape[:2], np.uint8)  # putText draws on 8-bit images only
        cv2.putText(layer, text, org, cv2.FONT_HERSHEY_SIMPLEX, float(rng.uniform(0.3, 1.0)),
                    255, width, cv2.LINE_AA)
        alpha = layer.astype(np.float32)[..., None] / 255
        img[:] = img * (1 - alpha) + np.asarray(color, np.float32) * alpha


def _object_color(rng: np.random.Generator, canvas: np.ndarray, mask: np.ndarray,
                  tries: int = 20) -> np.ndarray:
    """A random color far (> 80 in RGB) from the mean of the canvas under the mask."""
    under = canvas[mask].mean(0)
    best, best_dist = None, -1.0
    for _ in range(tries):
        color = _random_color(rng)
        dist = float(np.linalg.norm(color - under))
        if dist > 80:
            return color
        if dist > best_dist:
            best, best_dist = color, dist
    return best


def _paint_object(rng: np.random.Generator, img: np.ndarray, pts: np.ndarray,
                  color: np.ndarray, textured: bool = False) -> None:
    """Paints a shape: solid, with a gradient or a subtle texture, sometimes outlined;
    ``textured``: with multi-scale colour noise (:func:`_texture`)."""
    size = img.shape[0]
    layer = np.zeros((size, size), np.uint8)
    _fill_polygon(layer, pts, 255)
    alpha = layer.astype(np.float32)[..., None] / 255
    style = 'noise' if textured else rng.choice(['solid', 'solid', 'solid', 'gradient',
                                                 'texture'])
    fill = np.broadcast_to(color, img.shape).astype(np.float32)
    if style == 'noise':
        fill = (fill + _texture(rng, size, rng.uniform(20, 40))).clip(0, 255)
    elif style != 'solid':
        x0, y0 = pts.min(0)
        x1, y1 = pts.max(0)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        if style == 'gradient':
            t = ((xx - x0) / max(x1 - x0, 1)).clip(0, 1)
        else:
            t = 0.5 + 0.5 * np.sin(2 * math.pi * (xx + yy) / rng.uniform(4, 10))
        other = (color + rng.uniform(-60, 60, 3)).clip(0, 255)
        fill = fill + t[..., None] * (other - color)
    img[:] = img * (1 - alpha) + fill * alpha
    if rng.random() < 0.3:
        outline = tuple(float(v) for v in (255 - color))
        ipts = np.round(pts * (1 << _SHIFT)).astype(np.int32)[None]
        cv2.polylines(img, ipts, True, outline, 1, cv2.LINE_AA, _SHIFT)


def render_image(rng: np.random.Generator,
                 cfg: ShapesConfig = ShapesConfig()) -> Tuple[np.ndarray, List[ShapeObject]]:
    """Draws one image and its objects.

    Args:
        rng: the random generator; the output is a function of its state.
        cfg: drawing parameters.

    Returns:
        A ``uint8`` BGR image ``(size, size, 3)`` and its objects, each with a nonempty
        visible mask.

    Example:
        >>> img, objs = render_image(np.random.default_rng(0), ShapesConfig(size=64, min_size=8))
        >>> img.shape, img.dtype, len(objs) >= 1
        ((64, 64, 3), dtype('uint8'), True)
    """
    size, big = cfg.size, cfg.largest
    background = _textured_background(rng, size) if cfg.textured else _background(rng, size)
    img = background.copy()
    for _ in range(int(rng.integers(0, cfg.max_distractors + 1))):
        _distractor(rng, img)
    owner = np.full((size, size), -1, np.int32)  # which object owns each pixel
    full_area: List[int] = []
    labels: List[int] = []
    for _ in range(int(rng.integers(cfg.min_objects, cfg.max_objects + 1))):
        for _attempt in range(20):
            label = int(rng.integers(len(cfg.classes)))
            diameter = math.exp(rng.uniform(math.log(cfg.min_size), math.log(big)))
            r = diameter / 2
            center = rng.uniform(r + 1, size - r - 1, 2)
            pts = shape_polygon(label, center, diameter, rng.uniform(0, 2 * math.pi),
                                rng.uniform(0.35, 0.6), cfg.classes)
            mask = np.zeros((size, size), np.uint8)
            _fill_polygon(mask, pts, 1, antialias=False)
            mask = mask.astype(bool)
            if mask.sum() < 16:
                continue
            new_owner = np.where(mask, len(labels), owner)
            if all(_visible_ok(new_owner == i, full_area[i], cfg) for i in np.unique(owner[mask])
                   if i >= 0):
                break
        else:
            continue  # no placement kept the others visible enough: skip this object
        _paint_object(rng, img, pts, _object_color(rng, img, mask), cfg.textured)
        owner = new_owner
        full_area.append(int(mask.sum()))
        labels.append(label)
    for _ in range(int(rng.integers(0, 3))):
        _distractor(rng, img, thin=True)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (3, 3), 0)
    img = img + rng.normal(0, rng.uniform(0, cfg.max_noise), img.shape)
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    objects = [ShapeObject(label, owner == i, full_area[i]) for i, label in enumerate(labels)]
    return img[..., ::-1].copy(), [o for o in objects if o.area > 0]


def _visible_ok(mask: np.ndarray, full_area: int, cfg: ShapesConfig) -> bool:
    """Whether an occluded object keeps enough of itself."""
    if mask.sum() < (1 - cfg.max_occlusion) * full_area:
        return False
    ys, xs = np.nonzero(mask)
    return (xs.max() - xs.min() + 1 >= cfg.min_visible_side
            and ys.max() - ys.min() + 1 >= cfg.min_visible_side)


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of image ``index`` of ``split``: independent of every other image."""
    return np.random.default_rng([seed, SPLITS.index(split), index])


def _rle(mask: np.ndarray) -> Dict[str, object]:
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(v) for v in rle['size']], 'counts': rle['counts'].decode('ascii')}


def make_split(out_dir: str, split: str, num_images: int, seed: int = 0,
               cfg: ShapesConfig = ShapesConfig(), verbose: bool = True) -> str:
    """Writes ``<out_dir>/<split>/*.png`` and ``<out_dir>/annotations/instances_<split>.json``.

    Args:
        out_dir: the dataset root.
        split: ``'train'`` or ``'val'``.
        num_images: how many images.
        seed: the dataset seed.
        cfg: drawing parameters.
        verbose: print a line when done.

    Returns:
        The path of the annotation file.
    """
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    os.makedirs(osp.join(out_dir, split), exist_ok=True)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    images, annotations = [], []
    for index in range(num_images):
        img, objects = render_image(image_rng(seed, split, index), cfg)
        name = f'{index:06d}.png'
        cv2.imwrite(osp.join(out_dir, split, name), img)
        images.append({'id': index + 1, 'file_name': name, 'width': cfg.size,
                       'height': cfg.size})
        for obj in objects:
            annotations.append({'id': len(annotations) + 1, 'image_id': index + 1,
                                'category_id': obj.label + 1, 'bbox': obj.bbox,
                                'area': obj.area, 'iscrowd': 0,
                                'segmentation': _rle(obj.mask)})
    coco = {
        'info': {'description': 'mmdet-compconv generated shapes', 'version': '1.0',
                 'seed': seed, 'split': split, 'config': asdict(cfg)},
        'licenses': [],
        'images': images,
        'annotations': annotations,
        'categories': [{'id': i + 1, 'name': n, 'supercategory': 'shape'}
                       for i, n in enumerate(cfg.classes)],
    }
    path = osp.join(out_dir, 'annotations', f'instances_{split}.json')
    with open(path, 'w') as f:
        json.dump(coco, f)
    if verbose:
        print(f'[shapes] {split}: {num_images} images, {len(annotations)} objects -> {path}')
    return path


def make_dataset(out_dir: str, num_train: int = 400, num_val: int = 100, size: int = 256,
                 seed: int = 0, verbose: bool = True, **cfg_kwargs) -> Dict[str, str]:
    """Writes the train and val splits; returns ``{'train': json, 'val': json}``.

    Extra keyword arguments go to :class:`ShapesConfig`.
    """
    cfg = ShapesConfig(size=size, **cfg_kwargs)
    return {split: make_split(out_dir, split, num, seed, cfg, verbose)
            for split, num in (('train', num_train), ('val', num_val))}
