"""Latency of each CompConv layer of a backbone: deployed, export form, collapsed, dense conv.

For every distinct CompConv layer (input shape, channels, kernel, stride) of the backbone, at
the input it gets for one image of the given size, it times in channels_last, interleaved:
the dense conv it replaces (BN folded), its :class:`~mmdet_compconv.DeployedCompConv` form, its
export form (:class:`~mmdet_compconv.deployment.ExportCompConv`, logical channel order: one
cat + BN + index), and, for a stride-1 1x1 layer, the dense conv it collapses into. The MAC
ratio (CompConv over dense) is what ``switch_to_deploy(collapse_above=...)`` decides on; the
last column shows its choice. This is the measurement behind the default ``collapse_above``.

``--precision fp32 bf16``: one table per precision; bf16 casts the modules and the input to
bfloat16 (no per-call weight casts, unlike autocast); the header gives the dtype of the
convolution outputs read back from the calls. int8 is not offered: PyTorch has no CPU int8
path for these modules (see ``benchmark_latency.py``); time int8 per model with
``benchmark_latency.py --runtime openvino|onnxruntime --precision int8``.

Example:
    python tools/analysis_tools/benchmark_layers.py --size 800x1216 --precision fp32 bf16
"""
from __future__ import annotations

import argparse
from typing import Callable, Dict

import torch
import torch.nn as nn

from mmdet_compconv.cnn import (COLLAPSE_ABOVE, CompConv, DeployedCompConv, collapse_pointwise,
                                collapses)
from mmdet_compconv.deployment import ExportCompConv, isa_summary, torch_conv_dtypes
from mmdet_compconv.deployment.benchmark import interleaved
from mmdet_compconv.utils import parse_size


def layer_inputs(backbone: nn.Module, size: tuple) -> Dict[str, torch.Size]:
    """Input shape of every CompConv of ``backbone`` for one image of ``size``."""
    shapes, hooks = {}, []

    def record(name: str) -> Callable:
        def hook(module, inputs, output) -> None:
            shapes[name] = inputs[0].shape
        return hook

    for name, m in backbone.named_modules():
        if isinstance(m, CompConv):
            hooks.append(m.register_forward_hook(record(name)))
    with torch.no_grad():
        backbone(torch.rand(1, 3, *size))
    for h in hooks:
        h.remove()
    return shapes


def main(argv=None) -> None:
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=parse_size, default=(800, 1216), help='image size HxW')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--precision', nargs='+', choices=('fp32', 'bf16', 'int8'),
                        default=['fp32'], help='one table per precision (int8: see above)')
    parser.add_argument('--backbone', nargs='+', action=DictAction,
                        default=dict(type='CompConvResNet', depth=50, compconv_layers=None),
                        help='backbone config as key=value pairs (default: CompConv128 '
                        'ResNet-50, all block convs)')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    register_all_modules()
    size = args.size
    backbone = MODELS.build(dict(args.backbone)).eval()
    shapes = layer_inputs(backbone, size)
    for precision in args.precision:
        if precision == 'int8':
            print('# int8: not offered in PyTorch (no CPU int8 path reaches the deployed '
                  'CompConv); use benchmark_latency.py --runtime openvino|onnxruntime '
                  '--precision int8\n', flush=True)
            continue
        time_layers(args, backbone, shapes, torch.bfloat16 if precision == 'bf16' else
                    torch.float32)


def time_layers(args, backbone: nn.Module, shapes: dict, dtype: torch.dtype) -> None:
    """One table: every distinct CompConv layer of ``backbone`` in ``dtype``."""
    size = args.size
    rows, found = [], {}
    seen = set()
    for name, m in backbone.named_modules():
        if not isinstance(m, CompConv):
            continue
        key = (tuple(shapes[name]), m.out_channels, m.kernel_size, m.stride)
        if key in seen:
            continue
        seen.add(key)
        x = torch.rand(shapes[name]).to(dtype, memory_format=torch.channels_last)
        norm = nn.BatchNorm2d(m.out_channels).eval()
        dense = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                          m.dilation).eval()
        forms = {'dense': dense, 'deployed': DeployedCompConv(m, norm)}
        if m.plan.depth > 0:
            forms['export'] = ExportCompConv(m, norm, materialize=True)
        pointwise = m.kernel_size == (1, 1) and m.stride == (1, 1)
        if pointwise:
            forms['collapsed'] = collapse_pointwise(m, norm)
        fns = {}
        for form, module in forms.items():
            module = module.eval().to(dtype, memory_format=torch.channels_last)
            fns[form] = (lambda module=module, x=x: module(x))
        for form in ('dense', 'deployed'):
            found.setdefault(form, torch_conv_dtypes(fns[form]))
        ms = {k: 1000 * v for k, v in interleaved(fns, 1, args.repeats).items()}
        ratio = m.plan.macs_per_pixel(m.kernel_size[0], m.tail_type) / (
            m.in_channels * m.out_channels * m.kernel_size[0]**2)
        uses = 'collapsed' if collapses(m) else 'deployed'
        cells = [name, tuple(x.shape[1:]), m.out_channels, m.kernel_size[0], m.stride[0],
                 m.depth, m.prim_channels, f'{ratio:.3f}', f'{ms["dense"]:.2f}',
                 f'{ms["deployed"]:.2f}', f'{ms["export"]:.2f}' if 'export' in ms else '-',
                 f'{ms["collapsed"]:.2f}' if pointwise else '-', uses]
        rows.append('| ' + ' | '.join(str(c) for c in cells) + ' |')
    precision = 'bf16' if dtype == torch.bfloat16 else 'fp32'
    readback = '; '.join(f'{form}: ' + ', '.join(f'{d}' for d in c) for form, c in found.items())
    print(f'# {args.backbone}, {size[0]}x{size[1]}, {args.threads} threads, channels_last, '
          f'{precision} (modules and input in {str(dtype)[6:]}; conv outputs read back: '
          f'{readback}), {isa_summary()}, torch {torch.__version__}, median ms of '
          f'{args.repeats}; collapse_above={COLLAPSE_ABOVE}')
    print('| layer | input | C_out | k | s | d | C_p | MAC ratio | dense | deployed | export '
          '| collapsed | deploy uses |')
    print('|---' * 13 + '|')
    for row in rows:
        print(row, flush=True)
    print()


if __name__ == '__main__':
    main()
