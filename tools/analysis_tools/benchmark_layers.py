"""Latency of each CompConv layer of a backbone: deployed, collapsed and as the dense conv.

For every distinct CompConv layer (input shape, channels, kernel, stride) of the backbone, at
the input it gets for one image of the given size, it times in channels_last, interleaved:
the dense conv it replaces (BN folded), its :class:`~mmdet_compconv.DeployedCompConv` form and,
for a stride-1 1x1 layer, the dense conv it collapses into. The MAC ratio (CompConv over
dense) is what ``switch_to_deploy(collapse_above=...)`` decides on; the last column shows its
choice. This is the measurement behind the default ``collapse_above``.

Example:
    python tools/analysis_tools/benchmark_layers.py --size 800x1216
"""
from __future__ import annotations

import argparse
from typing import Callable, Dict

import torch
import torch.nn as nn

from mmdet_compconv.cnn import (COLLAPSE_ABOVE, CompConv, DeployedCompConv, collapse_pointwise,
                                collapses)
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
    print(f'# {args.backbone}, {size[0]}x{size[1]}, {args.threads} threads, channels_last, median ms '
          f'of {args.repeats}; collapse_above={COLLAPSE_ABOVE}')
    print('| layer | input | C_out | k | s | d | C_p | MAC ratio | dense | deployed | collapsed '
          '| deploy uses |')
    print('|---' * 12 + '|')
    seen = set()
    for name, m in backbone.named_modules():
        if not isinstance(m, CompConv):
            continue
        key = (tuple(shapes[name]), m.out_channels, m.kernel_size, m.stride)
        if key in seen:
            continue
        seen.add(key)
        x = torch.rand(shapes[name]).to(memory_format=torch.channels_last)
        norm = nn.BatchNorm2d(m.out_channels).eval()
        dense = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                          m.dilation).eval().to(memory_format=torch.channels_last)
        deployed = DeployedCompConv(m, norm).eval()
        fns = {'dense': lambda: dense(x), 'deployed': lambda: deployed(x)}
        pointwise = m.kernel_size == (1, 1) and m.stride == (1, 1)
        if pointwise:
            collapsed = collapse_pointwise(m, norm).to(memory_format=torch.channels_last)
            fns['collapsed'] = lambda: collapsed(x)
        ms = {k: 1000 * v for k, v in interleaved(fns, 1, args.repeats).items()}
        ratio = m.plan.macs_per_pixel(m.kernel_size[0], m.tail_type) / (
            m.in_channels * m.out_channels * m.kernel_size[0]**2)
        uses = 'collapsed' if collapses(m) else 'deployed'
        cells = [name, tuple(x.shape[1:]), m.out_channels, m.kernel_size[0], m.stride[0],
                 m.depth, m.prim_channels, f'{ratio:.3f}', f'{ms["dense"]:.2f}',
                 f'{ms["deployed"]:.2f}', f'{ms["collapsed"]:.2f}' if pointwise else '-', uses]
        print('| ' + ' | '.join(str(c) for c in cells) + ' |', flush=True)


if __name__ == '__main__':
    main()
