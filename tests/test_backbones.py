"""CompConvResNet(V1d): mmdet test_resnet.py cases ported, plus CompConv specifics."""
import logging

import pytest
import torch
import torch.nn as nn
from mmcv.ops import DeformConv2dPack
from mmdet.models.backbones import ResNet
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck
from mmdet.models.layers import ResLayer
from mmdet.registry import MODELS
from mmengine.logging import MMLogger
from mmengine.runner import load_checkpoint, save_checkpoint
from torch.nn import AvgPool2d, GroupNorm
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet_compconv import CompConv, compconv_macs
from mmdet_compconv.models import (CompConvBasicBlock, CompConvBottleneck, CompConvResNet,
                                   CompConvResNetV1d)
from mmdet_compconv.cnn import conv_layers, count_macs


def is_block(m):
    return isinstance(m, (BasicBlock, Bottleneck))


def is_norm(m):
    return isinstance(m, (GroupNorm, _BatchNorm))


def check_norm_state(modules, train_state):
    return all(m.training == train_state for m in modules if isinstance(m, _BatchNorm))


def compconv_names(model):
    """Names of the CompConv modules (not their sub-convs)."""
    return {n for n, m in model.named_modules() if isinstance(m, CompConv)}


def shapes(feats):
    return [tuple(f.shape) for f in feats]


def all_zeros(module):
    return all(p.eq(0).all() for p in (module.weight, module.bias))


# --------------------------------------------------------------------------- blocks
def test_basic_block():
    dcn = dict(type='DCN', deform_groups=1, fallback_on_stride=False)
    with pytest.raises(AssertionError):
        CompConvBasicBlock(64, 64, dcn=dcn)
    plugins = [dict(cfg=dict(type='ContextBlock', ratio=1. / 16), position='after_conv3')]
    with pytest.raises(AssertionError):
        CompConvBasicBlock(64, 64, plugins=plugins)
    with pytest.raises(ValueError, match=r"names \['conv3'\].*only the convs \('conv1', 'conv2'\)"):
        CompConvBasicBlock(64, 64, compconv_layers=('conv3', ))
    with pytest.raises(TypeError, match='compconv_cfg must be None or a dict'):
        CompConvBasicBlock(64, 64, compconv_cfg='CompConv')

    block = CompConvBasicBlock(64, 64)
    assert isinstance(block, BasicBlock) and is_block(block)
    for conv in (block.conv1, block.conv2):
        assert isinstance(conv, CompConv)
        assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (64, 64, (3, 3))
        assert conv.bias is None
    x = torch.randn(1, 64, 16, 16)
    assert block(x).shape == (1, 64, 16, 16)

    block = CompConvBasicBlock(64, 64, with_cp=True)
    assert block.with_cp
    assert block(x.requires_grad_()).shape == (1, 64, 16, 16)

    plain = CompConvBasicBlock(64, 64, compconv_cfg=None)
    assert type(plain.conv1) is nn.Conv2d and type(plain.conv2) is nn.Conv2d
    assert plain.compconv_layers == ()


def test_bottleneck():
    with pytest.raises(AssertionError):
        CompConvBottleneck(64, 64, style='tensorflow')
    with pytest.raises(AssertionError):
        CompConvBottleneck(64, 16, plugins=[
            dict(cfg=dict(type='ContextBlock', ratio=1. / 16), position='after_conv4')])
    with pytest.raises(AssertionError):
        CompConvBottleneck(64, 16, plugins=[
            dict(cfg=dict(type='ContextBlock', ratio=1. / 16), position='after_conv3'),
            dict(cfg=dict(type='ContextBlock', ratio=1. / 16), position='after_conv3')])
    with pytest.raises(KeyError):
        CompConvBottleneck(64, 16, plugins=[dict(cfg=dict(type='WrongPlugin'),
                                                 position='after_conv3')])
    with pytest.raises(ValueError, match=r"names \['conv4'\]"):
        CompConvBottleneck(64, 16, compconv_layers=('conv2', 'conv4'))

    x = torch.randn(1, 64, 16, 16)
    block = CompConvBottleneck(64, 16, with_cp=True)
    assert block.with_cp and is_block(block)
    assert block(x.clone().requires_grad_()).shape == (1, 64, 16, 16)

    # stride placement: pytorch strides the 3x3 conv2, caffe the 1x1 conv1; both CompConv
    block = CompConvBottleneck(64, 64, stride=2, style='pytorch')
    assert block.conv1.stride == (1, 1) and block.conv2.stride == (2, 2)
    block = CompConvBottleneck(64, 64, stride=2, style='caffe')
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)
    assert all(isinstance(getattr(block, n), CompConv) for n in ('conv1', 'conv2', 'conv3'))

    # DCN: mmdet's own assertion, and our error when conv2 is asked to be both
    dcn = dict(type='DCN', deform_groups=1, fallback_on_stride=False)
    with pytest.raises(AssertionError):
        CompConvBottleneck(64, 64, dcn=dict(dcn), conv_cfg=dict(type='Conv'))
    with pytest.raises(ValueError, match='dcn replaces conv2.*cannot also be a CompConv'):
        CompConvBottleneck(64, 64, dcn=dict(dcn))
    block = CompConvBottleneck(64, 64, dcn=dict(dcn), compconv_layers=('conv1', 'conv3'))
    assert isinstance(block.conv2, DeformConv2dPack)
    assert isinstance(block.conv1, CompConv) and isinstance(block.conv3, CompConv)

    block = CompConvBottleneck(64, 16)
    assert block(x).shape == (1, 64, 16, 16)

    block = CompConvBottleneck(64, 16, plugins=[
        dict(cfg=dict(type='ContextBlock', ratio=1. / 16), position='after_conv3')])
    assert block.context_block.in_channels == 64
    assert block(x).shape == (1, 64, 16, 16)

    block = CompConvBottleneck(64, 16, plugins=[
        dict(cfg=dict(type='ContextBlock', ratio=1. / 16, postfix=1), position='after_conv2'),
        dict(cfg=dict(type='ContextBlock', ratio=1. / 16, postfix=2), position='after_conv3'),
        dict(cfg=dict(type='ContextBlock', ratio=1. / 16, postfix=3), position='after_conv3')])
    assert block.context_block1.in_channels == 16
    assert block.context_block2.in_channels == block.context_block3.in_channels == 64
    assert block(x).shape == (1, 64, 16, 16)


def test_res_layer():
    x = torch.randn(1, 64, 16, 16)
    layer = ResLayer(CompConvBottleneck, 64, 16, 3)
    assert len(layer) == 3
    for blk in layer:
        assert blk.conv1.in_channels == 64 and blk.conv1.out_channels == 16
        assert blk.downsample is None and isinstance(blk.conv1, CompConv)
    assert layer(x).shape == (1, 64, 16, 16)

    layer = ResLayer(CompConvBottleneck, 64, 64, 3, stride=2)
    assert layer[0].downsample[0].out_channels == 256
    assert layer[0].downsample[0].stride == (2, 2)
    assert all(blk.downsample is None for blk in list(layer)[1:])
    assert layer(x).shape == (1, 256, 8, 8)

    layer = ResLayer(CompConvBottleneck, 64, 64, 3, stride=2, avg_down=True)
    assert isinstance(layer[0].downsample[0], AvgPool2d)
    assert layer[0].downsample[1].stride == (1, 1)
    assert layer(x).shape == (1, 256, 8, 8)

    layer = ResLayer(CompConvBasicBlock, 64, 64, 3, stride=2, downsample_first=False)
    assert layer[2].downsample[0].stride == (2, 2)
    assert all(blk.downsample is None for blk in list(layer)[:2])
    assert layer(x).shape == (1, 64, 8, 8)


# --------------------------------------------------------------------------- stems
def test_stem():
    model = CompConvResNet(50, base_channels=3)
    assert model.stem_channels == 3 and model.conv1.out_channels == 3
    assert model.norm1.num_features == 3 and model.layer1[0].conv1.in_channels == 3
    model = CompConvResNet(50, stem_channels=3, base_channels=2)
    assert model.stem_channels == 3 and model.conv1.out_channels == 3
    assert model.layer1[0].conv1.in_channels == 3
    assert type(model.conv1) is nn.Conv2d  # the stem stays plain by default

    model = CompConvResNetV1d(depth=50, stem_channels=6, base_channels=2)
    assert len(model.stem) == 9
    assert [model.stem[i].out_channels for i in (0, 3, 6)] == [3, 3, 6]
    assert [model.stem[i].num_features for i in (1, 4, 7)] == [3, 3, 6]
    assert model.layer1[0].conv1.in_channels == 6
    assert not any(isinstance(model.stem[i], CompConv) for i in (0, 3, 6))


def test_compconv_stems_forward():
    # 7x7 stem as a CompConv: odd kernel, same padding 3, stride 2
    model = CompConvResNet(18, base_channels=8, compconv_stem=True).eval()
    assert isinstance(model.conv1, CompConv)
    assert model.conv1.kernel_size == (7, 7) and model.conv1.padding == (3, 3)
    assert model.conv1.stride == (2, 2)
    x = torch.rand(1, 3, 33, 45)  # odd sizes: pooled identities must match the conv outputs
    ref = ResNet(18, base_channels=8)
    ref.eval()  # mmdet's ResNet.train returns None
    assert shapes(model(x)) == shapes(ref(x))

    model = CompConvResNetV1d(depth=50, base_channels=8, compconv_stem=True,
                              compconv_downsample=True).eval()
    assert all(isinstance(model.stem[i], CompConv) for i in (0, 3, 6))
    assert isinstance(model.layer2[0].downsample[0], AvgPool2d)
    assert isinstance(model.layer2[0].downsample[1], CompConv)
    assert model.layer2[0].downsample[1].stride == (1, 1)
    assert shapes(model(x)) == [(1, 32, 9, 12), (1, 64, 5, 6), (1, 128, 3, 3), (1, 256, 2, 2)]


# --------------------------------------------------------------------------- backbone
def test_backbone_errors():
    with pytest.raises(KeyError, match='invalid depth 20'):
        CompConvResNet(20)
    with pytest.raises(AssertionError):
        CompConvResNet(50, num_stages=0, stage_with_compconv=())
    with pytest.raises(AssertionError):
        CompConvResNet(50, num_stages=5, stage_with_compconv=(True, ) * 5)
    dcn = dict(type='DCN', deform_groups=1, fallback_on_stride=False)
    with pytest.raises(AssertionError):
        CompConvResNet(50, dcn=dcn, stage_with_dcn=(True, ))
    with pytest.raises(AssertionError):
        CompConvResNet(50, plugins=[dict(cfg=dict(type='ContextBlock', ratio=1. / 16),
                                         stages=(False, True, True), position='after_conv3')])
    with pytest.raises(AssertionError):
        CompConvResNet(50, strides=(1, ), dilations=(1, 1), num_stages=3)
    with pytest.raises(TypeError, match='pretrained must be a str or None'):
        CompConvResNet(50, pretrained=0)
    with pytest.raises(AssertionError):
        CompConvResNet(50, style='tensorflow')
    with pytest.raises(ValueError, match=r'stage_with_compconv=\(True, False\) needs one entry '
                                         r'per stage \(num_stages=4\)'):
        CompConvResNet(18, stage_with_compconv=(True, False))
    with pytest.raises(ValueError, match=r"names \['conv3'\].*CompConvBasicBlock"):
        CompConvResNet(18, compconv_layers=('conv3', ))
    with pytest.raises(ValueError, match='dcn replaces conv2'):
        CompConvResNet(50, base_channels=8, dcn=dict(dcn),
                       stage_with_dcn=(False, False, True, True))
    with pytest.raises(TypeError, match='compconv_cfg must be None or a dict'):
        CompConvResNet(18, compconv_cfg=[dict(type='CompConv')])
    with pytest.raises(KeyError, match='NoSuchConv'):
        CompConvResNet(18, compconv_cfg=dict(type='NoSuchConv'))
    with pytest.raises(ValueError, match='CompConv depth=3 does not fit'):
        CompConvResNet(18, base_channels=2, compconv_cfg=dict(type='CompConv', depth=3))


def test_dcn_on_stages_without_compconv():
    dcn = dict(type='DCN', deform_groups=1, fallback_on_stride=False)
    model = CompConvResNet(50, base_channels=8, dcn=dcn, stage_with_dcn=(False, False, True, True),
                           stage_with_compconv=(True, True, False, False))
    assert isinstance(model.layer3[0].conv2, DeformConv2dPack)
    assert isinstance(model.layer2[0].conv2, CompConv)
    model = CompConvResNet(50, base_channels=8, dcn=dict(dcn), compconv_layers=('conv1', 'conv3'),
                           stage_with_dcn=(False, True, True, True))
    assert isinstance(model.layer4[0].conv2, DeformConv2dPack)
    assert isinstance(model.layer4[0].conv3, CompConv)


def test_registry_build():
    model = MODELS.build(dict(type='CompConvResNet', depth=18, base_channels=8))
    assert type(model) is CompConvResNet and isinstance(model, ResNet)
    assert isinstance(model.layer1[0].conv1, CompConv)
    model = MODELS.build(dict(type='CompConvResNetV1d', depth=50, base_channels=8))
    assert type(model) is CompConvResNetV1d and model.deep_stem and model.avg_down
    assert isinstance(model.layer1[0].conv2, CompConv)


@pytest.mark.parametrize('kwargs, expected', [
    (dict(), {f'layer{s}.{b}.conv{c}' for s, n in zip((1, 2, 3, 4), (3, 4, 6, 3))
              for b in range(n) for c in (1, 2, 3)}),
    (dict(compconv_layers=('conv2', )), {f'layer{s}.{b}.conv2' for s, n in
                                         zip((1, 2, 3, 4), (3, 4, 6, 3)) for b in range(n)}),
    (dict(compconv_layers=('conv1', ), stage_with_compconv=(False, True, False, True)),
     {f'layer{s}.{b}.conv1' for s, n in ((2, 4), (4, 3)) for b in range(n)}),
    (dict(compconv_layers=(), compconv_stem=True, compconv_downsample=True),
     {'conv1'} | {f'layer{s}.0.downsample.0' for s in (1, 2, 3, 4)}),
    (dict(compconv_layers=(), compconv_downsample=True, stage_with_compconv=(0, 0, 1, 0)),
     {'layer3.0.downsample.0'}),
    (dict(compconv_cfg=None, compconv_stem=True, compconv_downsample=True), set()),
])
def test_which_convs_are_compconv(kwargs, expected):
    model = CompConvResNet(50, base_channels=8, **kwargs)
    assert compconv_names(model) == expected
    for name, m in model.named_modules():  # everything else is a plain conv
        if isinstance(m, nn.Conv2d) and not any(name.startswith(c + '.') for c in expected):
            assert type(m) is nn.Conv2d


def test_compconv_layers_as_a_single_name():
    """Issue 12.8: a string was split into characters ('c', 'o', 'n', ...)."""
    by_string = CompConvResNet(50, base_channels=8, compconv_layers='conv2')
    by_tuple = CompConvResNet(50, base_channels=8, compconv_layers=('conv2', ))
    assert by_string.compconv_layers == ('conv2', )
    assert compconv_names(by_string) == compconv_names(by_tuple)
    with pytest.raises(TypeError, match=r'compconv_layers must be None, a name or a sequence of '
                       r'names, got 2'):
        CompConvResNet(50, base_channels=8, compconv_layers=2)


def test_which_convs_basic_block():
    assert len(compconv_names(CompConvResNet(18, base_channels=8))) == 16
    model = CompConvResNet(18, base_channels=8, compconv_layers=('conv2', ))
    assert compconv_names(model) == {f'layer{s}.{b}.conv2' for s in (1, 2, 3, 4) for b in (0, 1)}
    model = CompConvResNetV1d(depth=18, base_channels=8, compconv_layers=(),
                              compconv_stem=True, compconv_downsample=True)
    assert compconv_names(model) == {'stem.0', 'stem.3', 'stem.6'} | {
        f'layer{s}.0.downsample.1' for s in (2, 3, 4)}


def test_norm_eval():
    model = CompConvResNet(50, norm_eval=True, base_channels=1)
    model.train()
    assert check_norm_state(model.modules(), False)
    model = CompConvResNet(50, norm_eval=False, base_channels=1)
    model.train()
    assert check_norm_state(model.modules(), True)
    # a pretrained path is only read by init_weights
    model = CompConvResNet(depth=50, norm_eval=True, pretrained='torchvision://resnet50')
    assert model.init_cfg == dict(type='Pretrained', checkpoint='torchvision://resnet50')
    model.train()
    assert check_norm_state(model.modules(), False)


@pytest.mark.parametrize('cls, stem', [(CompConvResNet, False), (CompConvResNet, True),
                                       (CompConvResNetV1d, True)])
def test_frozen_stages(cls, stem):
    model = cls(depth=50, frozen_stages=1, base_channels=8, compconv_stem=stem)
    model.train()
    stem_modules = [model.stem] if model.deep_stem else [model.conv1, model.norm1]
    for m in stem_modules:
        assert check_norm_state(m.modules(), False)
        assert all(not p.requires_grad for p in m.parameters())
    assert any(isinstance(m, CompConv) for s in stem_modules for m in s.modules()) == stem
    assert check_norm_state(model.layer1.modules(), False)
    assert sum(isinstance(m, CompConv) for m in model.layer1.modules()) == 9
    assert all(not p.requires_grad for p in model.layer1.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())
    assert check_norm_state(model.layer2.modules(), False)  # norm_eval=True


def test_forward_shapes():
    x = torch.randn(1, 3, 32, 32)
    model = CompConvResNet(18).train()
    assert shapes(model(x)) == [(1, 64, 8, 8), (1, 128, 4, 4), (1, 256, 2, 2), (1, 512, 1, 1)]

    model = CompConvResNet(50, base_channels=1)
    assert all(isinstance(m, _BatchNorm) for m in model.modules() if is_norm(m))
    model.train()
    assert shapes(model(x)) == [(1, 4, 8, 8), (1, 8, 4, 4), (1, 16, 2, 2), (1, 32, 1, 1)]

    model = CompConvResNet(50, out_indices=(0, 1, 2), base_channels=1).train()
    assert shapes(model(x)) == [(1, 4, 8, 8), (1, 8, 4, 4), (1, 16, 2, 2)]

    model = CompConvResNet(50, with_cp=True, base_channels=1)
    assert all(m.with_cp for m in model.modules() if is_block(m))
    model.train()
    assert shapes(model(x)) == [(1, 4, 8, 8), (1, 8, 4, 4), (1, 16, 2, 2), (1, 32, 1, 1)]

    model = CompConvResNetV1d(depth=50, base_channels=2).train()
    assert shapes(model(x)) == [(1, 8, 8, 8), (1, 16, 4, 4), (1, 32, 2, 2), (1, 64, 1, 1)]

    # real CompConv depths (d = 2, 3 in stages 3 and 4) at full width
    model = CompConvResNet(50).eval()
    assert {m.depth for m in model.modules() if isinstance(m, CompConv)} == {1, 2, 3}
    assert shapes(model(x)) == [(1, 256, 8, 8), (1, 512, 4, 4), (1, 1024, 2, 2),
                                (1, 2048, 1, 1)]


@pytest.mark.parametrize('kwargs, out', [
    (dict(style='caffe'), [(1, 32, 8, 8), (1, 64, 4, 4), (1, 128, 2, 2), (1, 256, 1, 1)]),
    (dict(strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2)),
     [(1, 32, 8, 8), (1, 64, 4, 4), (1, 128, 2, 2), (1, 256, 2, 2)]),
    (dict(avg_down=True, deep_stem=True, compconv_downsample=True, compconv_stem=True),
     [(1, 32, 8, 8), (1, 64, 4, 4), (1, 128, 2, 2), (1, 256, 1, 1)]),
])
def test_style_dilation_variants(kwargs, out):
    model = CompConvResNet(50, base_channels=8, **kwargs).eval()
    assert shapes(model(torch.rand(1, 3, 32, 32))) == out
    if kwargs.get('style') == 'caffe':
        assert isinstance(model.layer2[0].conv1, CompConv)
        assert model.layer2[0].conv1.stride == (2, 2)
    if 'dilations' in kwargs:
        assert model.layer4[1].conv2.dilation == (2, 2)
        assert model.layer4[1].conv2.padding == (2, 2)


def test_norm_configs():
    x = torch.randn(1, 3, 32, 32)
    model = CompConvResNet(50, base_channels=4,
                           norm_cfg=dict(type='GN', num_groups=2, requires_grad=True))
    norms = [m for m in model.modules() if is_norm(m)]
    assert norms and all(isinstance(m, GroupNorm) for m in norms)
    model.train()
    assert shapes(model(x)) == [(1, 16, 8, 8), (1, 32, 4, 4), (1, 64, 2, 2), (1, 128, 1, 1)]

    model = CompConvResNet(18, base_channels=8, norm_cfg=dict(type='SyncBN', requires_grad=True))
    norms = [m for m in model.modules() if is_norm(m)]
    assert len(norms) == 1 + 16 + 3 and all(isinstance(m, nn.SyncBatchNorm) for m in norms)
    assert shapes(model.eval()(x)) == [(1, 8, 8, 8), (1, 16, 4, 4), (1, 32, 2, 2), (1, 64, 1, 1)]


def test_plugins():
    plugins = [
        dict(cfg=dict(type='ContextBlock', ratio=1. / 16, postfix=1),
             stages=(False, True, True, False), position='after_conv3'),
        dict(cfg=dict(type='ContextBlock', ratio=1. / 16, postfix=2),
             stages=(False, True, True, False), position='after_conv3')
    ]
    model = CompConvResNet(50, plugins=plugins, base_channels=8)
    for m in model.layer1.modules():
        if is_block(m):
            assert not hasattr(m, 'context_block1')
    for layer, ch in ((model.layer2, 64), (model.layer3, 128)):
        for m in layer.modules():
            if is_block(m):
                assert m.context_block1.in_channels == m.context_block2.in_channels == ch
                assert isinstance(m.conv3, CompConv)
    model.train()
    assert shapes(model(torch.randn(1, 3, 32, 32))) == [(1, 32, 8, 8), (1, 64, 4, 4),
                                                        (1, 128, 2, 2), (1, 256, 1, 1)]


@pytest.mark.parametrize('depth, last', [(50, 'norm3'), (18, 'norm2')])
def test_zero_init_residual(depth, last):
    model = CompConvResNet(depth, zero_init_residual=True, base_channels=8)
    model.init_weights()
    blocks = [m for m in model.modules() if is_block(m)]
    assert len(blocks) == (16 if depth == 50 else 8)
    for m in blocks:
        assert all_zeros(getattr(m, last))
        assert m.norm1.weight.eq(1).all() and not all_zeros(m.norm1)
    assert model.norm1.weight.eq(1).all()
    # CompConv sub-convs are initialised (Kaiming) too, not left at zero
    assert all(p.abs().sum() > 0 for n, p in model.named_parameters() if 'convs' in n)
    model.train()
    assert shapes(model(torch.randn(1, 3, 32, 32)))[0][1] == (32 if depth == 50 else 8)

    model = CompConvResNet(depth, zero_init_residual=False, base_channels=8)
    model.init_weights()
    assert all(getattr(m, last).weight.eq(1).all() for m in model.modules() if is_block(m))


def test_with_cp_same_outputs_and_gradients():
    torch.manual_seed(0)
    ref = CompConvResNet(50, base_channels=8, compconv_downsample=True)
    cp = CompConvResNet(50, base_channels=8, compconv_downsample=True, with_cp=True)
    cp.load_state_dict(ref.state_dict())
    ref.train(), cp.train()
    x = torch.randn(2, 3, 32, 32)
    grads = []
    outs = []
    for model in (ref, cp):
        xi = x.clone().requires_grad_()
        out = model(xi)
        sum((o * torch.linspace(0, 1, o.numel()).view_as(o)).sum() for o in out).backward()
        outs.append(out)
        grads.append([xi.grad] + [p.grad for p in model.parameters()])
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b)
    assert all(g is not None for g in grads[0])
    for a, b in zip(*grads):  # same up to float summation order in the recomputation
        assert (a - b).norm() <= 1e-5 * a.norm()


# --------------------------------------------------------------------------- complexity
@pytest.mark.parametrize('layers, params_m, macs_g', [
    ('vanilla', 23.5, 4.09), (('conv2', ), 14.8, 2.90), (None, 8.55, 1.72)])
def test_r50_complexity_matches_spec(layers, params_m, macs_g):
    """Spec §5: ResNet-50 at 224x224, c0=128 (counted on the meta device)."""
    with torch.device('meta'):
        model = (ResNet(50) if layers == 'vanilla' else
                 CompConvResNet(50, compconv_layers=layers))
    model.eval()
    x = torch.empty(1, 3, 224, 224, device='meta')
    counted = count_macs(model, x)
    convs = conv_layers(model, x)
    assert len(convs) == 53  # stem + 16 blocks x 3 + 4 downsample
    assert counted == sum(c.macs for c in convs)
    params = sum(p.numel() for p in model.parameters())
    assert round(params / 1e6, 2 if params_m < 10 else 1) == params_m
    assert round(counted / 1e9, 2) == macs_g
    for c in convs:
        if isinstance(c.module, CompConv):
            assert c.macs == compconv_macs(c.module, c.out_size) < c.vanilla_macs


def test_counted_macs_real_tensors():
    """The same equality on real tensors (not only on the meta device), odd input size."""
    model = CompConvResNet(50, base_channels=16, compconv_stem=True,
                           compconv_downsample=True).eval()
    x = torch.rand(1, 3, 35, 41)
    convs = conv_layers(model, x)
    assert len(convs) == 53 and all(isinstance(c.module, CompConv) for c in convs)
    assert count_macs(model, x) == sum(c.macs for c in convs)


# --------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip(tmp_path, log_records):
    torch.manual_seed(0)
    src = CompConvResNet(50, base_channels=8, compconv_stem=True, compconv_downsample=True)
    src.init_weights()
    src.train()
    src(torch.rand(2, 3, 32, 32))  # move BN running stats away from their init
    src.eval()
    path = str(tmp_path / 'backbone.pth')
    save_checkpoint(src.state_dict(), path)

    dst = CompConvResNet(50, base_channels=8, compconv_stem=True, compconv_downsample=True)
    load_checkpoint(dst, path, strict=True)
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(dst.eval()(x), src(x))

    # the same through init_cfg=Pretrained, and from a detector checkpoint with a prefix
    for ckpt, prefix in ((path, None), (str(tmp_path / 'det.pth'), 'backbone.')):
        if prefix:
            save_checkpoint({'state_dict': {prefix + k: v for k, v in src.state_dict().items()},
                             'meta': {}}, ckpt)
        init_cfg = dict(type='Pretrained', checkpoint=ckpt, prefix=prefix)
        dst = CompConvResNet(50, base_channels=8, compconv_stem=True, compconv_downsample=True,
                             init_cfg=init_cfg)
        dst.init_weights()
        report = dst.pretrained_report
        assert report.complete and report.loaded == report.total > 100
        assert not report.unexpected and not report.mismatched
        torch.testing.assert_close(dst.eval()(x), src(x))
    assert not [r for r in log_records if r.levelno >= logging.WARNING and 'load' in r.getMessage()
                and 'FileClient' not in r.getMessage()]
    assert any('loaded' in r.getMessage() and 'from' in r.getMessage() for r in log_records)


def test_loading_plain_resnet_checkpoint_warns(tmp_path, log_records):
    plain = ResNet(50, base_channels=8)
    plain.init_weights()
    path = str(tmp_path / 'resnet50.pth')
    save_checkpoint(plain.state_dict(), path)

    model = CompConvResNet(50, base_channels=8, compconv_layers=('conv2', ))
    with pytest.raises(RuntimeError, match='Missing key|missing keys'):
        load_checkpoint(model, path, strict=True)

    model = CompConvResNet(50, base_channels=8, compconv_layers=('conv2', ), pretrained=path)
    model.init_weights()
    report = model.pretrained_report
    n_params = len(list(model.parameters()))
    assert 0 < report.loaded < report.total == n_params
    assert len(report.missing_groups) == 16
    assert report.missing_groups[0] == 'layer1.0.conv2.*'
    assert len(report.unexpected) == 16  # the plain conv2.weight of each block
    warnings = [r.getMessage() for r in log_records
                if r.levelno >= logging.WARNING and 'CompConvResNet' in r.getMessage()]
    assert len(warnings) == 1
    msg = warnings[0]
    assert 'PARTIAL CHECKPOINT LOAD' in msg
    assert f'loaded {report.loaded}/{report.total} parameter tensors' in msg
    assert '16 groups: layer1.0.conv2.*, layer1.1.conv2.*' in msg and 'layer4.2.conv2.*' in msg
    # what matched was loaded: stem, 1x1 convs and norms
    torch.testing.assert_close(model.conv1.weight, plain.conv1.weight)
    torch.testing.assert_close(model.layer3[2].conv3.weight, plain.layer3[2].conv3.weight)
    torch.testing.assert_close(model.layer3[2].bn2.weight, plain.layer3[2].bn2.weight)


def test_loading_unrelated_checkpoint_fails(tmp_path):
    path = str(tmp_path / 'other.pth')
    save_checkpoint({'state_dict': {'head.fc.weight': torch.zeros(2, 2)}}, path)
    model = CompConvResNet(18, base_channels=8, init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(RuntimeError, match=r'none of the \d+ parameter tensors is in'):
        model.init_weights()
    # a checkpoint of another width matches nothing either: every tensor is a shape mismatch
    save_checkpoint(ResNet(18, base_channels=16).state_dict(), path)
    model = CompConvResNet(18, base_channels=8, compconv_layers=(), pretrained=path)
    with pytest.raises(RuntimeError, match='none of the .* shape mismatch .*conv1.weight'):
        model.init_weights()
    # a file that holds no dict at all
    torch.save([torch.zeros(1)], path)
    model = CompConvResNet(18, base_channels=8, pretrained=path)
    with pytest.raises(RuntimeError, match='No state_dict found in checkpoint file'):
        model.init_weights()
