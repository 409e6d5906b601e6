"""Print the summary of ``make demo``: bbox mAP, params and MACs against the vanilla twin.

The mAP is read from the metrics file that mmdet's ``tools/test.py`` wrote
(``<test-dir>/<timestamp>/<timestamp>.json``). Params are counted on the models built from
the two configs; MACs are torch's ``FlopCounterMode`` total divided by 2 for one
``1 x 3 x S x S`` image through the backbone and through backbone + neck (the dense,
input-independent part of the detector; the RoI head's cost depends on the proposals).

Example:
    python tools/demo_summary.py \\
        --config configs/shapes/faster-rcnn_compconv128-r18_fpn_shapes.py \\
        --vanilla-config configs/shapes/faster-rcnn_r18_fpn_shapes.py \\
        --test-dir work_dirs/demo/test --times data=12 train=500 test=40 --wall 560
"""
from __future__ import annotations

import argparse
import glob
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from mmdet_compconv.apis import init_model
from mmdet_compconv.cnn import count_macs
from mmdet_compconv.models import DenseDetector

METRICS = ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75', 'coco/bbox_mAP_s',
           'coco/bbox_mAP_m', 'coco/bbox_mAP_l')


def read_metrics(test_dir: str) -> Tuple[Dict[str, float], str]:
    """The newest ``coco/bbox_*`` metrics that mmdet's test.py dumped under ``test_dir``.

    Raises:
        FileNotFoundError: no metrics file with ``coco/bbox_mAP`` exists there.
    """
    for path in sorted(glob.glob(osp.join(test_dir, '*', '*.json')), reverse=True):
        with open(path) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError:
                continue
        if isinstance(data, dict) and 'coco/bbox_mAP' in data:
            return data, path
    raise FileNotFoundError(f'no test metrics (coco/bbox_mAP) under {test_dir}/*/*.json')


def params(module: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in module.parameters())


def complexity(config: str, size: int) -> Dict[str, int]:
    """Params of the detector and backbone, MACs of backbone and backbone + neck."""
    model = init_model(config)
    x = torch.rand(1, 3, size, size)
    return dict(params=params(model), backbone_params=params(model.backbone),
                backbone_macs=count_macs(DenseDetector(model, 'backbone'), x),
                features_macs=count_macs(DenseDetector(model, 'backbone+neck'), x))


def _m(n: int) -> str:
    return f'{n / 1e6:.2f} M'


def _g(n: int) -> str:
    return f'{n / 1e9:.3f} G'


def format_summary(metrics: Dict[str, float], cc: Dict[str, int], van: Dict[str, int],
                   config: str, vanilla_config: str, size: int,
                   times: Dict[str, float], wall: Optional[float], vis_dir: str,
                   num_vis: int) -> str:
    """The summary as printed (see the module docstring)."""
    line = '=' * 78
    rows: List[str] = [line, 'make demo: CompConv Faster R-CNN on the generated shapes dataset',
                       line, f'config          {config}',
                       f'vanilla twin    {vanilla_config}']
    m = {k.split('/')[-1]: v for k, v in metrics.items() if k in METRICS}
    rows.append(f"bbox mAP        {m['bbox_mAP']:.3f}   (pycocotools on shapes val: "
                f"AP50 {m.get('bbox_mAP_50', float('nan')):.3f}, "
                f"AP75 {m.get('bbox_mAP_75', float('nan')):.3f}, "
                f"APs/m/l {m.get('bbox_mAP_s', float('nan')):.3f}/"
                f"{m.get('bbox_mAP_m', float('nan')):.3f}/{m.get('bbox_mAP_l', float('nan')):.3f})")
    rows += ['', f'{"":22}{"params":>12}{"backbone":>12}{"MACs @ 1x3x" + str(size) + "x" + str(size):>30}',
             f'{"":22}{"detector":>12}{"params":>12}{"backbone":>15}{"+ FPN":>15}']
    for name, c in (('CompConv128-R18', cc), ('ResNet-18 (vanilla)', van)):
        rows.append(f'{name:22}{_m(c["params"]):>12}{_m(c["backbone_params"]):>12}'
                    f'{_g(c["backbone_macs"]):>15}{_g(c["features_macs"]):>15}')
    ratio = {k: cc[k] / van[k] for k in cc}
    rows.append(f'{"CompConv / vanilla":22}{ratio["params"]:>12.3f}{ratio["backbone_params"]:>12.3f}'
                f'{ratio["backbone_macs"]:>15.3f}{ratio["features_macs"]:>15.3f}')
    rows += ['', f'predictions     {num_vis} images drawn by mmdet\'s DetLocalVisualizer in {vis_dir}']
    if times:
        rows.append('time            ' + ', '.join(f'{k} {v:.0f} s' for k, v in times.items()) +
                    (f'; wall {wall / 60:.1f} min' if wall is not None else ''))
    rows.append(line)
    return '\n'.join(rows)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', required=True)
    parser.add_argument('--vanilla-config', required=True)
    parser.add_argument('--test-dir', required=True, help="work dir of mmdet's test.py")
    parser.add_argument('--size', type=int, default=256, help='input size of the MAC count')
    parser.add_argument('--times', nargs='*', default=[], help='phase=seconds ...')
    parser.add_argument('--wall', type=float, default=None, help='total seconds')
    parser.add_argument('--out', default=None, help='also write the summary here')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    metrics, path = read_metrics(args.test_dir)
    vis = sorted(glob.glob(osp.join(osp.dirname(path), 'vis', '*')))
    times = {k: float(v) for k, v in (t.split('=', 1) for t in args.times)}
    text = format_summary(metrics, complexity(args.config, args.size),
                          complexity(args.vanilla_config, args.size), args.config,
                          args.vanilla_config, args.size, times, args.wall,
                          osp.join(osp.dirname(path), 'vis'), len(vis))
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    return text


if __name__ == '__main__':
    main()
