"""Quantize a detector's exported backbone (+ neck, + dense head) to int8 for a CPU runtime.

Post-training static quantization: OpenVINO through NNCF (``nncf.quantize``, writes an
``.xml`` + ``.bin``), ONNX Runtime through ``quantize_static`` (QDQ ``.onnx``). Calibration
images: the first ``--calib-num`` images of ``--calib DIR`` (searched recursively, read by
``UnlabeledImageDataset``) through the config's test pipeline and data preprocessor. The float
export is written next to ``--out`` as ``<stem>_float.onnx``. The tool prints the precisions
the runtime executes (read back from it) and the int8 model's error against the float model
on the first calibration image.

Example:
    python tools/deployment/quantize.py configs/shapes/faster-rcnn_compconv128-r18_fpn_shapes.py \\
        work_dirs/twins/compconv/epoch_8.pth --runtime openvino --calib data/shapes/train \\
        --out work_dirs/int8/compconv_backbone_neck.xml
"""
from __future__ import annotations

import argparse
from typing import List, Optional

import numpy as np
from mmengine.config import DictAction

from mmdet_compconv.apis import init_model
from mmdet_compconv.cnn import COLLAPSE_ABOVE
from mmdet_compconv.deployment import (FORMS, RUNTIMES, calibration_inputs, executed_precisions,
                                       isa_summary, load_runtime, quantized_ops,
                                       runtime_model_file)
from mmdet_compconv.models.dense_detector import PARTS
from mmdet_compconv.utils import parse_fraction, parse_size


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--runtime', choices=RUNTIMES, required=True)
    parser.add_argument('--calib', required=True, help='folder of calibration images')
    parser.add_argument('--calib-num', type=int, default=32, help='calibration images used')
    parser.add_argument('--out', required=True,
                        help='the int8 model: .xml (openvino) or .onnx (onnxruntime)')
    parser.add_argument('--part', choices=PARTS, default='backbone+neck',
                        help='the exported part (backbone+neck: what tools/deployment/'
                        'test_runtime.py evaluates)')
    parser.add_argument('--form', choices=FORMS,
                        default='hybrid', help='the CompConv form exported (hybrid: the '
                        "backbone's 1x1 CompConvs dense, which int8 runs faster)")
    parser.add_argument('--collapse-above', type=parse_fraction, default=COLLAPSE_ABOVE)
    parser.add_argument('--shape', type=parse_size, default=None,
                        help="resize the calibration images to HxW (default: the test "
                        "pipeline's resize); the export's static shape is theirs")
    parser.add_argument('--dynamic', action='store_true',
                        help='export with a dynamic batch, height and width (OpenVINO int8 is '
                        'still quantized at the calibration shape)')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)
    suffix = '.xml' if args.runtime == 'openvino' else '.onnx'
    if not args.out.endswith(suffix):
        parser.error(f'--runtime {args.runtime} writes a {suffix} file, got --out {args.out}')
    if args.calib_num < 1:
        parser.error(f'--calib-num must be at least 1, got {args.calib_num}')
    return args


def main(argv: Optional[List[str]] = None) -> str:
    """Export, quantize, load the int8 model and print what it executes; returns --out."""
    args = parse_args(argv)
    model = init_model(args.config, args.checkpoint, args.cfg_options)
    inputs = calibration_inputs(model.cfg, args.calib, args.calib_num, args.shape)
    out = runtime_model_file(model, args.part, args.form, args.collapse_above, args.runtime,
                             'int8', args.out, inputs[0], inputs, args.dynamic)
    run = load_runtime(out, args.runtime, args.threads, precision='int8')
    ref = load_runtime(out.rsplit('.', 1)[0] + '_float.onnx', args.runtime, args.threads)
    err = max(float(np.abs(a - b).max() / (np.abs(a).max() + 1e-12))
              for a, b in zip(ref(inputs[0]), run(inputs[0])))
    print(f'{out}: {args.runtime} int8, {quantized_ops(out)} quantization ops, {len(inputs)} '
          f'calibration images from {args.calib}; part {args.part}, form {args.form} '
          f'(collapse_above={args.collapse_above})')
    print(f'{isa_summary()}; executed (read back): {executed_precisions(run)}')
    print(f'max |int8 - float| / max |float| over the outputs, first calibration image: '
          f'{err:.3g}')
    return out


if __name__ == '__main__':
    main()
