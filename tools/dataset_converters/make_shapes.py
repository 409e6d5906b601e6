"""Write the generated "shapes" detection dataset in COCO format.

Example:
    python tools/dataset_converters/make_shapes.py --out data/shapes \
        --num-train 400 --num-val 100 --size 256 --seed 0

A different task on the same kind of images (the pretraining set of the backbone-only
distillation flow, configs/distill/README.md): another seed and a disjoint class set::

    python tools/dataset_converters/make_shapes.py --out data/shapes-other \
        --num-train 400 --num-val 100 --size 256 --seed 1 \
        --classes pentagon hexagon cross rhombus arrow

A task whose images differ in statistics (the third held-out check of the distillation
flows): textured backgrounds and objects, more clutter, smaller objects::

    python tools/dataset_converters/make_shapes.py --out data/shapes-textured \
        --num-train 400 --num-val 100 --size 256 --seed 2 --textured \
        --max-distractors 16 --min-size 10 --max-size 96

Layout: ``<out>/{train,val}/*.png`` and ``<out>/annotations/instances_{train,val}.json``.
The same arguments always give the same dataset (see ``mmdet_compconv.datasets.shapes``).
"""
from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import List, Optional

from mmdet_compconv.datasets.shapes import CLASSES, SHAPE_KINDS, make_dataset


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/shapes', help='dataset root')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--size', type=int, default=256, help='image width = height')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--max-objects', type=int, default=8)
    parser.add_argument('--min-size', type=int, default=12, help='smallest object diameter')
    parser.add_argument('--max-size', type=int, default=None,
                        help='largest object diameter (default: 0.6 of --size)')
    parser.add_argument('--max-distractors', type=int, default=8,
                        help='most non-object strokes, dots and letters per image')
    parser.add_argument('--textured', action='store_true',
                        help='textured backgrounds and objects (multi-scale colour noise)')
    parser.add_argument('--classes', nargs='+', default=list(CLASSES), metavar='NAME',
                        help=f'object classes, from {" ".join(SHAPE_KINDS)} '
                             f'(default: {" ".join(CLASSES)})')
    return parser.parse_args(argv)


def summarize(path: str) -> str:
    """One line per split: objects per class and COCO small/medium/large counts."""
    import json
    with open(path) as f:
        coco = json.load(f)
    names = {c['id']: c['name'] for c in coco['categories']}
    per_class = Counter(names[a['category_id']] for a in coco['annotations'])
    classes = [c['name'] for c in coco['categories']]
    sizes = Counter('small' if a['area'] < 32**2 else 'medium' if a['area'] < 96**2 else 'large'
                    for a in coco['annotations'])
    return (' '.join(f'{n}={per_class[n]}' for n in classes) + ' | ' +
            ' '.join(f'{k}={sizes[k]}' for k in ('small', 'medium', 'large')))


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    start = time.time()
    paths = make_dataset(args.out, args.num_train, args.num_val, args.size, args.seed,
                         max_objects=args.max_objects, min_size=args.min_size,
                         max_size=args.max_size, max_distractors=args.max_distractors,
                         textured=args.textured, classes=tuple(args.classes))
    for split, path in paths.items():
        print(f'[shapes] {split}: {summarize(path)}')
    print(f'[shapes] done in {time.time() - start:.1f} s')


if __name__ == '__main__':
    main()
