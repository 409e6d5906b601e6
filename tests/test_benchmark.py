"""The latency benchmark script: its vanilla twin and one tiny run (no timing is asserted)."""
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location(
    'benchmark_latency', ROOT / 'tools' / 'analysis_tools' / 'benchmark_latency.py')
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_vanilla_twin_swaps_every_compconv_part():
    cfg = dict(
        type='FasterRCNN',
        backbone=dict(type='CompConvResNet', depth=50, compconv_cfg=dict(type='CompConv'),
                      compconv_layers=('conv2', ), stage_with_compconv=(True, ) * 4,
                      compconv_stem=False, compconv_downsample=False),
        neck=dict(type='CompConvFPN', in_channels=[256], compconv_convs=('lateral', )),
        rpn_head=dict(type='CompConvRPNHead', compconv_cfg=dict(type='CompConv', c0=64)),
        roi_head=dict(bbox_head=[dict(conv_cfg=dict(type='mmdet.CompConv')),
                                 dict(conv_cfg=dict(type='Conv2d'))]))
    twin = bench.vanilla_twin(cfg)
    assert twin == dict(
        type='FasterRCNN', backbone=dict(type='ResNet', depth=50),
        neck=dict(type='FPN', in_channels=[256]), rpn_head=dict(type='RPNHead'),
        roi_head=dict(bbox_head=[dict(conv_cfg=None), dict(conv_cfg=dict(type='Conv2d'))]))


def test_tiny_run_prints_a_table(capsys):
    bench.main([
        str(ROOT / 'configs/compconv/faster-rcnn_compconv128-r50_compconv128-fpn_1x_coco.py'),
        '--sizes', '64x96', '--modes', 'backbone', 'predict', '--repeats', '1', '--warmup', '0',
        '--threads', '1'])
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith('| 64x96 |')]
    assert [r.split('|')[3].strip() for r in rows] == ['backbone', 'predict']
    for row in rows:
        cells = [c.strip() for c in row.strip('|').split('|')]
        assert len(cells) == 3 + 6 + 1  # size, dtype, part, 3 forms x 2 formats, ratio
        assert all(float(c) > 0 for c in cells[3:9])
        assert re.fullmatch(r'\*\*\d+\.\d\dx\*\*', cells[9])
