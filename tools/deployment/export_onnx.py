"""Export a detector's backbone, neck and dense head to ONNX, and check it against PyTorch.

The exported part is mmdet's ``tensor`` mode without the RoI head: the raw per-level outputs
of the RPN head (two-stage detectors) or of the box head (one-stage detectors), as mmdeploy
splits a detector; box decoding and NMS are left to the caller. mmdeploy itself cannot export
on torch 2.13, so this is plain ``torch.onnx``. The ONNX Runtime outputs are compared with the
model as loaded (train form, eval mode), not with the form that was exported, so a wrong
inference form fails the check too.

Forms (``--form``):
    train     the model as trained (eval mode).
    deploy    ``switch_to_deploy`` + mmcv's ``fuse_conv_bn``: PyTorch's fastest form.
    export    :func:`mmdet_compconv.deployment.to_export_form`: built for runtimes (BN folded,
              the shuffle folded into the next convs' weights, one Concat per CompConv); default.

Example:
    python tools/deployment/export_onnx.py configs/shapes/retinanet_compconv128-r18_fpn_shapes.py \\
        CHECKPOINT --shape 256 256 --out work_dirs/onnx/retinanet.onnx
"""
from __future__ import annotations

import argparse
import os
from typing import List, Optional

import torch
from mmengine.config import DictAction

from mmdet_compconv.apis import init_model
from mmdet_compconv.cnn import COLLAPSE_ABOVE
from mmdet_compconv.deployment import (FORMS, export_onnx, max_abs_error, model_form, op_counts,
                                       ort_optimized_op_counts, run_onnxruntime)
from mmdet_compconv.models import DenseDetector
from mmdet_compconv.models.dense_detector import PARTS


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='weights to load (omitted: random init, to check the export)')
    parser.add_argument('--out', default=None, help='the .onnx file (default: '
                        'work_dirs/onnx/<config stem>_<form>.onnx)')
    parser.add_argument('--shape', nargs=2, type=int, default=[800, 1216], metavar=('H', 'W'))
    parser.add_argument('--dynamic', action='store_true',
                        help='dynamic batch, height and width (checked at a second size too)')
    parser.add_argument('--form', choices=FORMS, default='export')
    parser.add_argument('--part', choices=PARTS, default='tensor')
    parser.add_argument('--dynamo', action='store_true',
                        help='use the dynamo exporter (needs onnxscript) instead of TorchScript')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--collapse-above', type=float, default=COLLAPSE_ABOVE,
                        help='1x1 CompConvs above this MAC fraction of the dense conv become '
                        'that dense conv (see switch_to_deploy)')
    parser.add_argument('--no-collapse', action='store_true',
                        help='keep every CompConv split (collapse_above=None)')
    parser.add_argument('--non-strict', action='store_true',
                        help='load a checkpoint that does not fit the config (missing keys '
                        'keep their initialisation); by default such a checkpoint is refused')
    parser.add_argument('--atol', type=float, default=1e-3,
                        help='fail when the ONNX Runtime output differs from the model by more')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)
    if args.no_collapse:
        args.collapse_above = None
    if min(args.shape) < 32:
        raise SystemExit(f'--shape {args.shape[0]} {args.shape[1]}: both sides must be at least '
                         '32 (the stride of C5)')
    return args


def main(argv: Optional[List[str]] = None) -> float:
    """Export, run with ONNX Runtime, print and return the max absolute error."""
    args = parse_args(argv)
    h, w = args.shape
    model = init_model(args.config, args.checkpoint, args.cfg_options, strict=not args.non_strict)
    reference = DenseDetector(model, args.part).eval()  # the model as loaded
    net = DenseDetector(model_form(model, args.form, args.collapse_above), args.part).eval()
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    stem = os.path.splitext(os.path.basename(args.config))[0]
    out = args.out or os.path.join('work_dirs', 'onnx', f'{stem}_{args.form}.onnx')
    export_onnx(net, x, out, dynamo=args.dynamo, opset=args.opset, dynamic=args.dynamic,
                output_names=net.output_names(x))
    checks = [x] + ([torch.rand(2, 3, h + 32, w + 32, generator=torch.Generator().manual_seed(1))]
                    if args.dynamic else [])
    err = 0.0
    for xi in checks:
        with torch.no_grad():
            ref = reference(xi)
        e = max_abs_error(ref, run_onnxruntime(out, xi))
        print(f'{out}: input {tuple(xi.shape)}, {len(ref)} outputs, max abs error vs the model '
              f'as loaded {e:.3g}')
        err = max(err, e)
    for title, counts in (('ops', op_counts(out)),
                          ('ops ONNX Runtime runs', ort_optimized_op_counts(out))):
        print(f'{title}: ' + ', '.join(f'{k} {v}' for k, v in sorted(counts.items())))
    if not err <= args.atol:
        raise SystemExit(f'ONNX Runtime differs from the model by {err:.3g} > --atol {args.atol}')
    return err


if __name__ == '__main__':
    main()
