"""Plan a CompConv backbone to a budget: dense or CompConv (and its C_0) per layer.

Each planned layer's candidates (dense; CompConv at each ``--c0`` giving a distinct structure)
are timed on the runtime in the form that would run there (PyTorch: the deploy form in
channels_last; ONNX Runtime / OpenVINO: the export form), at the input shape the layer sees at
``--size``, with a cache keyed by runtime, version, precision, CPU model and threads; each
candidate's error is the loss left after fitting it to the vanilla teacher layer on unlabeled
images (``--teacher-ckpt`` and ``--images``), or, without a teacher, a weaker proxy (the fit
to the randomly initialised layer on Gaussian inputs). An exact knapsack solver picks the
least total error within the budget. The plan (JSON), a config inheriting CONFIG that sets
``model.backbone.compconv_plan`` (for ``configs/distill`` and ``tools/train.py``) and a report
are written to ``--out-dir``; the planned part's latency is predicted, then measured. See
docs/planning.md.

Example:
    python tools/analysis_tools/plan_compconv.py \\
        configs/shapes/faster-rcnn_compconv128-r18_fpn_shapes.py --runtime torch \\
        --size 224x224 --threads 1 --latency-ratio 0.8 --out-dir work_dirs/plans
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from mmdet_compconv.cnn import COLLAPSE_ABOVE
from mmdet_compconv.planning import DEFAULT_LAYERS, PLAN_RUNTIMES, plan_to_budget
from mmdet_compconv.utils import parse_fraction, parse_size, register_all_modules


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a detector config with a (CompConv)ResNet backbone')
    parser.add_argument('--runtime', choices=PLAN_RUNTIMES, required=True)
    parser.add_argument('--precision', default='fp32',
                        help='fp32, or bf16 (torch autocast, OpenVINO); default fp32')
    parser.add_argument('--size', type=parse_size, required=True, help='input HxW planned for')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--latency-ratio', type=float, help='planned / dense latency budget')
    parser.add_argument('--macs-ratio', type=float, help='planned / dense MACs budget')
    parser.add_argument('--teacher-ckpt', help='vanilla weights (detector or backbone)')
    parser.add_argument('--images', help='a folder of unlabeled images (with --teacher-ckpt)')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--c0', type=float, nargs='+', default=[64, 128, 256],
                        help='C_0 of the CompConv candidates')
    parser.add_argument('--layers', default=DEFAULT_LAYERS,
                        help='regular expression of the planned conv names (default: every '
                        'residual-block conv)')
    parser.add_argument('--part', default='backbone', choices=('backbone', 'backbone+neck',
                                                               'tensor'))
    parser.add_argument('--cache', default='work_dirs/compconv_latency_cache.json',
                        help='latency cache file ("none": no cache)')
    parser.add_argument('--collapse-above', type=parse_fraction, default=COLLAPSE_ABOVE)
    parser.add_argument('--fit-steps', type=int, default=100)
    parser.add_argument('--num-images', type=int, default=8)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=7)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    register_all_modules(init_default_scope=True)
    try:
        plan_to_budget(
            args.config, args.out_dir, runtime=args.runtime, precision=args.precision,
            size=args.size, threads=args.threads, latency_ratio=args.latency_ratio,
            macs_ratio=args.macs_ratio, teacher_ckpt=args.teacher_ckpt, images=args.images,
            c0s=args.c0, layers=args.layers, part=args.part,
            cache=None if args.cache.lower() == 'none' else args.cache,
            collapse_above=args.collapse_above, fit_steps=args.fit_steps,
            num_images=args.num_images, warmup=args.warmup, repeats=args.repeats,
            log=lambda message: print(message, flush=True))
    except ValueError as e:
        print(f'plan_compconv: error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
