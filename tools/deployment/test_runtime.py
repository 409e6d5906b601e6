"""Evaluate a detector with its backbone and neck run by a CPU runtime, in a given precision.

mmengine's ``Runner.test`` runs the config's test set and evaluator (COCO metric, pycocotools)
as ``tools/test.py`` does; only ``extract_feat`` changes: the exported backbone + neck run in
ONNX Runtime or OpenVINO (fp32, bf16 or int8), the RPN / RoI / box heads, box decoding and NMS
stay in PyTorch. Without ``--model``, the checkpoint is exported in ``--form`` (and, for int8,
quantized with ``--calib`` images, as ``tools/deployment/quantize.py`` does); with it, that
file is evaluated. The precision the runtime executed is read back and printed with the mAP.
Check first that fp32 reproduces ``tools/test.py``'s mAP on the same checkpoint.

Example:
    python tools/deployment/test_runtime.py configs/shapes/faster-rcnn_r18_fpn_shapes.py \\
        work_dirs/twins/vanilla/epoch_8.pth --runtime openvino --precision bf16
"""
from __future__ import annotations

import argparse
import os
from typing import List, Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmdet_compconv.cnn import COLLAPSE_ABOVE
from mmdet_compconv.deployment import (FORMS, PRECISIONS, RUNTIMES, calibration_inputs,
                                       executed_precisions, isa_summary, load_runtime,
                                       runtime_model_file, use_runtime_features)
from mmdet_compconv.utils import parse_fraction, register_all_modules


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--runtime', choices=RUNTIMES, required=True)
    parser.add_argument('--precision', choices=PRECISIONS, default='fp32')
    parser.add_argument('--model', default=None,
                        help='an exported / quantized file of the backbone (+ neck) to '
                        'evaluate (default: export the checkpoint)')
    parser.add_argument('--part', choices=('backbone', 'backbone+neck'), default='backbone+neck')
    parser.add_argument('--form', choices=FORMS, default='export')
    parser.add_argument('--collapse-above', type=parse_fraction, default=COLLAPSE_ABOVE)
    parser.add_argument('--calib', default=None, help='calibration images (int8, no --model)')
    parser.add_argument('--calib-num', type=int, default=32)
    parser.add_argument('--dynamic', action='store_true',
                        help='export with a dynamic batch, height and width (default: the static '
                        'shape of the first test image, which every test image must have)')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--work-dir', default=None,
                        help='logs and the exported model (default: work_dirs/test_runtime/'
                        '<config>_<runtime>_<precision>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)
    if args.runtime == 'onnxruntime' and args.precision == 'bf16':
        parser.error("ONNX Runtime's CPU execution provider has no bf16 convolution kernels: "
                     'use --runtime openvino for bf16')
    if args.precision == 'int8' and args.model is None and args.calib is None:
        parser.error('--precision int8 quantizes the export: give --calib DIR (or --model, a '
                     'file written by tools/deployment/quantize.py)')
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    """Evaluate; returns the metrics of ``Runner.test``."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    stem = os.path.splitext(os.path.basename(args.config))[0]
    cfg.work_dir = args.work_dir or os.path.join(
        'work_dirs', 'test_runtime', f'{stem}_{args.runtime}_{args.precision}')
    cfg.load_from = args.checkpoint
    cfg.launcher = 'none'
    runner = (Runner.from_cfg(cfg) if 'runner_type' not in cfg
              else RUNNERS.build(cfg))
    runner.load_or_resume()  # the checkpoint, before the backbone is swapped out
    model = runner.model
    path = args.model
    if path is None:
        suffix = '.xml' if args.precision == 'int8' and args.runtime == 'openvino' else '.onnx'
        path = os.path.join(cfg.work_dir, f'{stem}_{args.part.replace("+", "_")}_{args.form}'
                            f'_{args.precision}{suffix}')
        calib = (calibration_inputs(cfg, args.calib, args.calib_num)
                 if args.precision == 'int8' else None)
        with torch.no_grad():
            batch = model.data_preprocessor(next(iter(runner.test_dataloader)), False)
        runtime_model_file(model.eval(), args.part, args.form, args.collapse_above,
                           args.runtime, args.precision, path,
                           batch['inputs'][:1].float().numpy(), calib, args.dynamic)
    run = load_runtime(path, args.runtime, args.threads, precision=args.precision)
    executed = executed_precisions(run)
    use_runtime_features(model, run, args.part)
    metrics = runner.test()
    summary = ', '.join(f'{k}: {v:.4f}' if isinstance(v, float) else f'{k}: {v}'
                        for k, v in metrics.items() if k.endswith('bbox_mAP'))
    print(f'{stem}: {args.runtime} {args.precision} ({args.part} of {path}; {isa_summary()}; '
          f'executed: {executed}) {summary}')
    return metrics


if __name__ == '__main__':
    main()
