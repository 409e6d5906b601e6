"""The latency benchmark script: its vanilla twin and one tiny run (no timing is asserted)."""
import importlib.util
import re
from pathlib import Path

from mmdet_compconv.deployment import vanilla_twin
from mmdet_compconv.deployment.benchmark import (calibrated_model, data_samples,
                                                 predict_with_proposals)
from mmdet_compconv.utils import parse_fraction

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
    twin = vanilla_twin(cfg)
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
        assert len(cells) == 3 + 4 + 1  # size, dtype, part, 2 sides x 2 formats, ratio
        assert all(float(c) > 0 for c in cells[3:7])
        assert re.fullmatch(r'\*\*\d+\.\d\dx\*\*', cells[7])
    assert "predict: both RoI heads get the vanilla RPN's proposals" in out


def test_predict_with_proposals_is_predict_with_the_rpn_output():
    import torch
    from mmengine.config import Config
    cfg = Config.fromfile(
        str(ROOT / 'configs/compconv/faster-rcnn_compconv128-r50_compconv128-fpn_1x_coco.py'))
    cfg.model.backbone.depth = 18
    cfg.model.neck.in_channels = [64, 128, 256, 512]
    cfg.model.test_cfg.rcnn.score_thr = 0  # an untrained head scores every class ~1/81
    model = calibrated_model(cfg)
    x = torch.rand(1, 3, 64, 96)
    with torch.inference_mode():
        ref = model.predict(x, data_samples(64, 96))[0].pred_instances
        proposals = model.rpn_head.predict(model.extract_feat(x), data_samples(64, 96),
                                           rescale=False)
        out = predict_with_proposals(model, x, data_samples(64, 96), proposals)
    out = out[0].pred_instances
    assert len(ref) > 0 and torch.equal(out.bboxes, ref.bboxes)
    assert torch.equal(out.scores, ref.scores)


def test_collapse_above_argument():
    assert parse_fraction('none') is None
    assert parse_fraction('0.2') == 0.2
    import argparse
    import pytest
    with pytest.raises(argparse.ArgumentTypeError, match="got 'x'"):
        parse_fraction('x')


def test_layer_benchmark_prints_one_row_per_distinct_layer(capsys):
    spec = importlib.util.spec_from_file_location(
        'benchmark_layers', ROOT / 'tools' / 'analysis_tools' / 'benchmark_layers.py')
    layers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layers)
    layers.main(['--size', '64x64', '--repeats', '1', '--threads', '1', '--backbone',
                 'type=CompConvResNet', 'depth=18', 'base_channels=16', 'compconv_layers=None'])
    rows = [ln.strip('|').split('|') for ln in capsys.readouterr().out.splitlines()
            if ln.startswith('| layer') and not ln.startswith('| layer |')]
    # ResNet-18 blocks: conv1 and conv2 of each stage's first block, conv1 of the others
    # have distinct shapes; the stride-1 3x3 convs repeat.
    names = [r[0].strip() for r in rows]
    assert names[0] == 'layer1.0.conv1' and len(names) == len(set(names)) >= 4
    for r in rows:
        cells = [c.strip() for c in r]
        assert len(cells) == 13 and float(cells[8]) > 0 and float(cells[9]) > 0
        assert float(cells[10]) > 0  # the export form
        assert cells[11] == '-' and cells[12] == 'deployed'  # BasicBlocks have no 1x1 convs
