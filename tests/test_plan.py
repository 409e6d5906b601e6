"""Per-layer plans (``compconv_plan``): reading, refusals, and every consumer honouring them:
the model itself, the distiller, switch_to_deploy, the export form, MACs, the zoo's FLOPs and
checkpoints. Tiny models (8 base channels, 32x32 inputs)."""
import copy
import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import yaml
from mmdet.registry import MODELS
from mmengine.config import Config

from mmdet_compconv import CompConv, DeployedCompConv, switch_to_deploy
from mmdet_compconv.cnn import conv_layers, count_macs, dense_macs
from mmdet_compconv.deployment import to_export_form
from mmdet_compconv.models import (CompConvDistiller, CompConvFPN, CompConvResNet,
                                   CompConvRPNHead, compconv_plan_of, load_compconv_plan)
from mmdet_compconv.zoo import check_state_fits, model_complexity
from test_deploy import trained_like

pytestmark = pytest.mark.usefixtures('mmdet_scope_one_thread')  # tests/conftest.py

TINY = dict(depth=50, base_channels=16, stem_channels=16, norm_eval=False)
PLAN = {
    'conv1': dict(c0=4),                          # the stem, not a CompConv by default
    'layer1.0.conv1': None, 'layer1.0.conv2': None, 'layer1.0.conv3': None,  # a dense block
    'layer2.0.downsample.0': dict(c0=8),          # a shortcut
    'layer3.1.conv2': dict(type='CompConv', depth=2, prim_multiple=4, tail='full', c0=64),
    'layer4.0.conv3': None,
}
ROOT = Path(__file__).resolve().parents[1]
SHAPES = str(ROOT / 'configs/shapes/faster-rcnn_compconv128-r18_fpn_shapes.py')


def compconvs(model: nn.Module) -> set:
    return {n for n, m in model.named_modules() if isinstance(m, CompConv)}


def test_plan_overrides_named_layers_only():
    base = CompConvResNet(compconv_layers=('conv2', ), **TINY)
    planned = CompConvResNet(compconv_layers=('conv2', ), compconv_plan=PLAN, **TINY)
    expected = (compconvs(base) - {'layer1.0.conv2'}) | {'conv1', 'layer2.0.downsample.0',
                                                        'layer3.1.conv2'}
    assert compconvs(planned) == expected
    conv = planned.get_submodule('layer3.1.conv2')
    assert (conv.depth, conv.prim_channels, conv.tail_type) == (2, 12, 'full')
    effective = planned.effective_compconv_plan()
    assert effective['layer1.0.conv1'] is None and effective['layer2.1.conv1'] is None
    assert effective['layer2.1.conv2'] == dict(type='CompConv', c0=128, depth=None, max_depth=3,
                                               prim_multiple=1, tail='depthwise', shuffle=True)
    assert set(effective) == {n for n, m in planned.named_modules()  # no sub-convolution
                              if type(m) in (nn.Conv2d, CompConv) and '.convs.' not in n
                              and not n.endswith('.tail')}
    json.dumps(effective)  # serialisable


@pytest.mark.parametrize('form', ['dict', 'json', 'yaml'])
def test_plan_round_trip(tmp_path, form):
    model = CompConvResNet(compconv_plan=PLAN, **TINY)
    effective = model.effective_compconv_plan()
    if form == 'json':
        source = tmp_path / 'plan.json'
        source.write_text(json.dumps(effective))
    elif form == 'yaml':
        source = str(tmp_path / 'plan.yml')
        with open(source, 'w') as f:
            yaml.safe_dump(effective, f)
    else:
        source = copy.deepcopy(effective)
    again = CompConvResNet(compconv_plan=source, **TINY)
    assert again.effective_compconv_plan() == effective
    assert {k: v.shape for k, v in again.state_dict().items()} == \
        {k: v.shape for k, v in model.state_dict().items()}
    # the effective plan alone, over a plain ResNet config, builds the same layers
    plain = CompConvResNet(compconv_cfg=None, compconv_plan=source, **TINY)
    assert plain.effective_compconv_plan() == effective


@pytest.mark.parametrize('plan, error, match', [
    ({'layer9.0.conv1': None}, ValueError, r"names 'layer9.0.conv1', but CompConvResNet has no "
                                           r'module of that name'),
    ({'layer1.0.bn1': None}, ValueError, r"names 'layer1.0.bn1', but CompConvResNet has a "
                                         r'BatchNorm2d, not a conv'),
    ({'layer1.0.conv2.convs.0': None}, ValueError, r"names 'layer1.0.conv2.convs.0'"),
    ({'layer1.0.conv2': dict(c0=-1)}, ValueError, r"compconv_plan\['layer1.0.conv2'\]=.*c0=-1"),
    ({'layer1.0.conv2': dict(depth=7)}, ValueError, r"compconv_plan\['layer1.0.conv2'\].*"
                                                    r'depth=7'),
    ({'layer1.0.conv2': dict(tail='wide')}, ValueError, r"tail must be one of .* got 'wide'"),
    ({'layer1.0.conv2': dict(colour=1)}, ValueError, r"layer1.0.conv2.*'colour'"),
    ({'layer1.0.conv2': dict(type='NoConv')}, ValueError, r"'NoConv' is not a registered"),
    ({'layer1.0.conv2': 64}, TypeError, r"compconv_plan\['layer1.0.conv2'\] must be None .* "
                                        r'got 64'),
    ([('layer1.0.conv2', None)], TypeError, r'compconv_plan must be None, a mapping'),
    ('plan.txt', ValueError, r"compconv_plan='plan.txt': a plan file is"),
    ('missing.json', FileNotFoundError, r"compconv_plan='missing.json': no such file"),
])
def test_bad_plans_are_refused_naming_the_value(plan, error, match):
    with pytest.raises(error, match=match):
        CompConvResNet(compconv_plan=plan, **TINY)


def test_plan_of_a_detector_and_its_necks_and_head():
    cfg = Config.fromfile(SHAPES)
    cfg.model.neck.type = 'CompConvFPN'
    cfg.model.neck.compconv_plan = {'fpn_convs.0.conv': None}
    cfg.model.rpn_head.type = 'CompConvRPNHead'
    cfg.model.rpn_head.compconv_plan = {'rpn_conv': dict(c0=64)}
    cfg.model.backbone.compconv_plan = {'layer4.1.conv2': None}
    with torch.device('meta'):
        detector = MODELS.build(cfg.model)
    plan = compconv_plan_of(detector)
    assert plan['backbone.layer4.1.conv2'] is None and plan['neck.fpn_convs.0.conv'] is None
    assert plan['neck.lateral_convs.0.conv']['c0'] == 128
    assert plan['rpn_head.rpn_conv']['c0'] == 64
    assert not any(k.startswith('rpn_head.rpn_cls') for k in plan)
    with pytest.raises(ValueError, match=r"names 'rpn_cls'"):
        CompConvRPNHead(in_channels=8, feat_channels=8, compconv_plan={'rpn_cls': None},
                        anchor_generator=dict(type='AnchorGenerator', scales=[8],
                                              ratios=[1.0], strides=[4]))
    neck = CompConvFPN([16, 32], 16, num_outs=2, compconv_plan={'lateral_convs.1.conv': None})
    assert type(neck.lateral_convs[1].conv) is nn.Conv2d
    assert load_compconv_plan(None) is None


def test_frozen_stages_freeze_the_planned_convs():
    model = CompConvResNet(frozen_stages=1, compconv_plan={'layer1.0.conv2': dict(c0=4)},
                           **TINY)
    assert not any(p.requires_grad for p in model.layer1.parameters())


def test_distiller_honours_the_plan():
    plan = {'layer1.0.conv1': None, 'layer1.0.conv2': None, 'layer1.0.conv3': None,
            'conv1': dict(c0=4)}
    distiller = CompConvDistiller(
        teacher=dict(type='ResNet', **TINY),
        student=dict(type='CompConvResNet', compconv_plan=plan, **TINY),
        teacher_ckpt=None, blockwise_iters=5,
        data_preprocessor=dict(type='DetDataPreprocessor', mean=[0.0] * 3, std=[255.0] * 3))
    assert 'layer1.0' not in distiller.distilled_blocks
    assert 'layer1.1' in distiller.distilled_blocks
    losses = distiller(torch.rand(2, 3, 32, 32), mode='loss')
    assert 'loss_block_layer1_0' not in losses and 'loss_block_layer1_1' in losses
    # the twin check still holds a planned student to the teacher's blocks
    with pytest.raises(ValueError, match='differ in their residual blocks'):
        CompConvDistiller(teacher=dict(type='ResNet', **dict(TINY, depth=101)),
                          student=dict(type='CompConvResNet', compconv_plan=plan, **TINY),
                          teacher_ckpt=None,
                          data_preprocessor=dict(type='DetDataPreprocessor'))


def test_deploy_and_export_forms_honour_the_plan():
    torch.manual_seed(0)
    model = trained_like(CompConvResNet(compconv_plan=PLAN, **TINY))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        y = model(x)
        exported = to_export_form(copy.deepcopy(model))
        deployed = switch_to_deploy(copy.deepcopy(model), collapse_above=None)
        for out in (exported(x), deployed(x)):
            assert all(torch.allclose(a, b, atol=1e-4, rtol=1e-4) for a, b in zip(out, y))
    assert type(deployed.layer1[0].conv2) is nn.Conv2d  # planned dense
    assert isinstance(deployed.layer3[1].conv2, DeployedCompConv)
    assert isinstance(deployed.conv1, DeployedCompConv)
    assert not any(isinstance(m, CompConv) for m in exported.modules())


def test_macs_and_zoo_flops_honour_the_plan():
    model = CompConvResNet(compconv_plan=PLAN, **TINY).eval()
    x = torch.rand(1, 3, 32, 32)
    layers = {c.name: c for c in conv_layers(model, x)}
    assert count_macs(model, x) == sum(c.macs for c in layers.values())
    assert layers['layer1.0.conv2'].macs == dense_macs(model.layer1[0].conv2,
                                                       layers['layer1.0.conv2'].out_size)
    assert layers['conv1'].macs < layers['conv1'].vanilla_macs

    planned = Config.fromfile(SHAPES)
    names = [n for n in CompConvResNet(18).effective_compconv_plan() if '.conv' in n]
    planned.model.backbone.compconv_plan = {n: None for n in names}  # every block conv dense
    vanilla = Config.fromfile(str(ROOT / 'configs/shapes/faster-rcnn_r18_fpn_shapes.py'))
    compconv = Config.fromfile(SHAPES)
    assert model_complexity(planned) == model_complexity(vanilla)
    assert model_complexity(compconv)['FLOPs'] < model_complexity(planned)['FLOPs']


def test_checkpoint_round_trip_with_a_plan(tmp_path):
    cfg = Config.fromfile(SHAPES)
    plan = {'layer1.0.conv1': None, 'layer3.0.conv2': dict(c0=64), 'layer4.1.conv2': None}
    plan_file = tmp_path / 'plan.json'
    plan_file.write_text(json.dumps(plan))
    cfg.model.backbone.compconv_plan = str(plan_file)
    model = MODELS.build(cfg.model)
    path = tmp_path / 'planned.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    state = torch.load(path, weights_only=True)['state_dict']
    check_state_fits(cfg, state, str(path))  # the config with the same plan: fits
    again = MODELS.build(cfg.model)
    again.load_state_dict(state, strict=True)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(model.eval().extract_feat(x), again.eval().extract_feat(x)):
            torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match='does not fit'):
        check_state_fits(Config.fromfile(SHAPES), state, str(path))  # without the plan


def test_plan_in_a_config_file_with_dotted_keys(tmp_path):
    path = tmp_path / 'planned.py'
    path.write_text(f"_base_ = '{SHAPES}'\n"
                    "model = dict(backbone=dict(compconv_plan={'layer1.0.conv1': None, "
                    "'layer2.0.conv2': dict(c0=64)}))\n")
    cfg = Config.fromfile(str(path))
    assert dict(cfg.model.backbone.compconv_plan) == {'layer1.0.conv1': None,
                                                      'layer2.0.conv2': {'c0': 64}}
    with torch.device('meta'):
        detector = MODELS.build(cfg.model)
    assert type(detector.backbone.layer1[0].conv1) is nn.Conv2d
    assert detector.backbone.layer2[0].conv2.c0 == 64
