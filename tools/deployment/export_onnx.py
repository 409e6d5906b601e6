"""Export a detector's backbone, neck and dense head to ONNX, and check it against PyTorch.

The exported part is mmdet's ``tensor`` mode without the RoI head: the raw per-level outputs
of the RPN head (two-stage detectors) or of the box head (one-stage detectors), as mmdeploy
splits a detector; box decoding and NMS are left to the caller. mmdeploy itself cannot export
on torch 2.13, so this is plain ``torch.onnx``.

Forms (``--form``):
    train     the model as trained (eval mode).
    deploy    ``switch_to_deploy`` + mmcv's ``fuse_conv_bn``: PyTorch's fastest form.
    export    :func:`mmdet_compconv.export.to_export_form`: built for runtimes (BN folded, the
              shuffle folded into the next convs' weights, one Concat per CompConv); default.

Example:
    python tools/deployment/export_onnx.py configs/shapes/retinanet_compconv128-r18_fpn_shapes.py \
        --shape 256 256 --out work_dirs/onnx/retinanet.onnx
"""
from __future__ import annotations

import argparse
import copy
import os
from typing import List, Optional

import torch

FORMS = ('train', 'deploy', 'export')


def model_form(model: torch.nn.Module, form: str, collapse_above: Optional[float]):
    """A deep copy of ``model`` (eval mode) in the given form."""
    from mmcv.cnn import fuse_conv_bn

    from mmdet_compconv import switch_to_deploy
    from mmdet_compconv.export import to_export_form
    if form not in FORMS:
        raise ValueError(f'form must be one of {FORMS}, got {form!r}')
    model = copy.deepcopy(model).eval()
    if form == 'deploy':
        return fuse_conv_bn(switch_to_deploy(model, collapse_above))
    if form == 'export':
        return to_export_form(model, collapse_above)
    return model


def build_detector(config: str, checkpoint: Optional[str] = None, cfg_options=None):
    """Build the detector of ``config`` (random init unless a checkpoint is given), eval mode."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    import mmdet_compconv  # noqa: F401  (registers the CompConv modules)
    register_all_modules()
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.model.pop('data_preprocessor', None)
    if checkpoint is None and 'backbone' in cfg.model:
        cfg.model.backbone.init_cfg = None  # offline: random weights are enough to export
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, checkpoint, map_location='cpu')  # our safe loader (checkpoint.py)
    else:
        model.init_weights()
    return model.eval()


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction

    from mmdet_compconv.deploy import COLLAPSE_ABOVE
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
    parser.add_argument('--part', choices=('backbone', 'backbone+neck', 'tensor'),
                        default='tensor')
    parser.add_argument('--dynamo', action='store_true',
                        help='use the dynamo exporter (needs onnxscript) instead of TorchScript')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--collapse-above', type=float, default=COLLAPSE_ABOVE,
                        help='1x1 CompConvs above this MAC fraction of the dense conv become '
                        'that dense conv (see switch_to_deploy)')
    parser.add_argument('--no-collapse', action='store_true',
                        help='keep every CompConv split (collapse_above=None)')
    parser.add_argument('--atol', type=float, default=1e-3,
                        help='fail when the ONNX Runtime output differs from PyTorch by more')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)
    if args.no_collapse:
        args.collapse_above = None
    return args


def main(argv: Optional[List[str]] = None) -> float:
    """Export, run with ONNX Runtime, print and return the max absolute error."""
    args = parse_args(argv)
    from mmdet_compconv.onnx_export import (DenseDetector, export_onnx, max_abs_error,
                                            op_counts, ort_optimized_op_counts,
                                            run_onnxruntime)
    h, w = args.shape
    if h < 32 or w < 32:
        raise SystemExit(f'--shape {h} {w}: both sides must be at least 32 (the stride of C5)')
    model = build_detector(args.config, args.checkpoint, args.cfg_options)
    net = DenseDetector(model_form(model, args.form, args.collapse_above), args.part).eval()
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    stem = os.path.splitext(os.path.basename(args.config))[0]
    out = args.out or os.path.join('work_dirs', 'onnx', f'{stem}_{args.form}.onnx')
    names = net.output_names(x)
    export_onnx(net, x, out, dynamo=args.dynamo, opset=args.opset, dynamic=args.dynamic,
                output_names=names)
    checks = [x] + ([torch.rand(2, 3, h + 32, w - 32, generator=torch.Generator().manual_seed(1))]
                    if args.dynamic else [])
    err = 0.0
    for xi in checks:
        with torch.no_grad():
            ref = net(xi)
        e = max_abs_error(ref, run_onnxruntime(out, xi))
        print(f'{out}: input {tuple(xi.shape)}, {len(ref)} outputs, max abs error vs PyTorch '
              f'{e:.3g}')
        err = max(err, e)
    for title, counts in (('ops', op_counts(out)),
                          ('ops ONNX Runtime runs', ort_optimized_op_counts(out))):
        print(f'{title}: ' + ', '.join(f'{k} {v}' for k, v in sorted(counts.items())))
    if not err <= args.atol:
        raise SystemExit(f'ONNX Runtime differs from PyTorch by {err:.3g} > --atol {args.atol}')
    return err


if __name__ == '__main__':
    main()
