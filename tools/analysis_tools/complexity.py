"""Parameters and MACs of CompConv ResNets (torch FlopCounterMode / 2, cross-checked).

Counts multiply-accumulates of one image with torch's ``FlopCounterMode`` (FLOPs / 2; only
convolutions occur in a ResNet backbone, so these are the convolution MACs) on the meta device,
so even R152 at 800x1333 takes a second, and checks that they equal the sum of the analytic
per-layer figures (``mmdet_compconv.cnn.complexity``: CompConv Eq. 7/8 plus plain convs).

Variants: ``vanilla`` is mmdet's ResNet; ``3x3`` replaces the 3x3 block convs (``conv2`` of a
Bottleneck; both convs of a BasicBlock); ``all`` replaces every block conv. The stem and the
downsample shortcuts stay plain (spec §5).

Example:
    .venv/bin/python tools/analysis_tools/complexity.py
    .venv/bin/python tools/analysis_tools/complexity.py --depths 50 --sizes 224 --per-layer R50-all
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.registry import MODELS

from mmdet_compconv.cnn import CompConv, conv_layers, count_macs
from mmdet_compconv.utils import parse_size

VARIANTS = ('vanilla', '3x3', 'all')


def backbone_cfg(depth: int, variant: str, c0: float = 128, prim_multiple: int = 1) -> dict:
    """The backbone config of ``R{depth}-{variant}``."""
    if variant == 'vanilla':
        return dict(type='ResNet', depth=depth)
    layers = ('conv2', ) if variant == '3x3' and depth >= 50 else None
    return dict(type='CompConvResNet', depth=depth, compconv_layers=layers,
                compconv_cfg=dict(type='CompConv', c0=c0, prim_multiple=prim_multiple))


def build(depth: int, variant: str, c0: float = 128, prim_multiple: int = 1) -> nn.Module:
    """Build the backbone on the meta device (no memory, no real arithmetic)."""
    with torch.device('meta'):
        model = MODELS.build(backbone_cfg(depth, variant, c0, prim_multiple))
    model.eval()  # mmdet's ResNet.train returns None: no chaining
    return model


def measure(model: nn.Module, size: Tuple[int, int]) -> Tuple[int, int]:
    """(counted MACs, analytic MACs) of one ``size`` image."""
    x = torch.empty(1, 3, *size, device='meta')
    counted = count_macs(model, x)
    analytic = sum(layer.macs for layer in conv_layers(model, x))
    return counted, analytic


def parse_model(text: str) -> Tuple[int, str]:
    """'R50-all' -> (50, 'all')."""
    depth, _, variant = text.upper().lstrip('R').partition('-')
    variant = variant.lower() or 'all'
    if variant not in VARIANTS:
        raise argparse.ArgumentTypeError(f'variant must be one of {VARIANTS}, got {variant!r}')
    return int(depth), variant


def summary_table(depths: Sequence[int], sizes: Sequence[Tuple[int, int]],
                  c0: float, prim_multiple: int = 1) -> Tuple[List[str], bool]:
    """Markdown lines of the params / MACs table, and whether every count matched."""
    head = ['Model', 'Variant', 'Params (M)', 'ratio']
    for h, w in sizes:
        head += [f'MACs {h}x{w} (G)', 'ratio']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    ok = True
    for depth in depths:
        base = {}
        for variant in VARIANTS:
            model = build(depth, variant, c0, prim_multiple)
            params = sum(p.numel() for p in model.parameters())
            cells = [f'R{depth}', variant, f'{params / 1e6:.2f}',
                     f'{params / base.setdefault("params", params):.3f}']
            for size in sizes:
                counted, analytic = measure(model, size)
                ok &= counted == analytic
                ref = base.setdefault(size, counted)
                cells += [f'{counted / 1e9:.2f}' + ('' if counted == analytic else ' (!)'),
                          f'{counted / ref:.3f}']
            lines.append('| ' + ' | '.join(cells) + ' |')
    return lines, ok


def per_layer_table(depth: int, variant: str, size: Tuple[int, int], c0: float,
                    prim_multiple: int = 1) -> List[str]:
    """Markdown lines of the per-layer view of one model."""
    model = build(depth, variant, c0, prim_multiple)
    x = torch.empty(1, 3, *size, device='meta')
    layers = conv_layers(model, x)
    head = ['layer', 'C_in', 'C_out', 'k', 'stride', 'd', 'C_p', 'MACs (M)', 'ratio']
    lines = [f'R{depth}-{variant} at {size[0]}x{size[1]}, c0={c0:g}:',
             '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for layer in layers:
        m = layer.module
        d, cp = (m.depth, m.prim_channels) if isinstance(m, CompConv) else ('-', '-')
        lines.append(f'| {layer.name} | {m.in_channels} | {m.out_channels} | {m.kernel_size[0]} '
                     f'| {m.stride[0]} | {d} | {cp} | {layer.macs / 1e6:.2f} '
                     f'| {layer.macs / layer.vanilla_macs:.4f} |')
    total, vanilla = sum(v.macs for v in layers), sum(v.vanilla_macs for v in layers)
    counted = count_macs(model, x)
    lines.append(f'| total ({len(layers)} convs) | | | | | | | {total / 1e6:.2f} '
                 f'| {total / vanilla:.4f} |')
    lines.append(f'counted (FlopCounterMode / 2): {counted / 1e6:.2f} M '
                 f'({"equals" if counted == total else "DIFFERS FROM"} the analytic sum)')
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--depths', type=int, nargs='+', default=[18, 34, 50, 101, 152],
                        choices=[18, 34, 50, 101, 152])
    parser.add_argument('--sizes', type=parse_size, nargs='+',
                        default=[(224, 224), (800, 1333)], help="e.g. 224 800x1333")
    parser.add_argument('--c0', type=float, default=128, help='C_0 of CompConv (default 128)')
    parser.add_argument('--per-layer', type=parse_model, metavar='MODEL',
                        help='also print the per-layer view of MODEL, e.g. R50-all, R50-3x3')
    parser.add_argument('--per-layer-size', type=parse_size, default=(224, 224))
    parser.add_argument('--prim-multiple', type=int, default=1,
                        help='round C_p up to a multiple of this (e.g. the SIMD width 8 or 16; '
                        'an option outside the spec, default 1: the spec)')
    args = parser.parse_args(argv)

    lines, ok = summary_table(args.depths, args.sizes, args.c0, args.prim_multiple)
    print(f'Backbone params and MACs (mmdet ResNet without fc, one image, c0={args.c0:g}'
          + (f', C_p rounded up to a multiple of {args.prim_multiple}'
             if args.prim_multiple > 1 else '') + '); ratio vs vanilla.')
    print('\n'.join(lines))
    print('R18/R34 are made of BasicBlocks, whose convs are all 3x3: there 3x3 = all.')
    print('MACs: torch FlopCounterMode / 2; ' +
          ('every count equals the sum of the analytic per-layer figures.' if ok else
           'counts marked (!) DIFFER from the analytic per-layer sum.'))
    if args.per_layer:
        print()
        print('\n'.join(per_layer_table(*args.per_layer, args.per_layer_size, args.c0,
                                         args.prim_multiple)))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
