"""Issue 12.2: a host's ``init_cfg`` reaches CompConv layers, as it reaches ``nn.Conv2d``.

mmengine applies a module's ``init_cfg``, then calls ``init_weights()`` of each child that has
one; CompConv has none, so the host's choice stands. ``layer='Conv2d'`` matches CompConv's
sub-convolutions.
"""
import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS

from mmdet_compconv import CompConv


def sub_convs(module: nn.Module):
    return [m for c in module.modules() if isinstance(c, CompConv)
            for m in c.modules() if isinstance(m, nn.Conv2d)]


def test_compconv_has_no_init_weights_for_mmengine_to_call():
    assert not hasattr(CompConv(8, 8, 3, padding=1), 'init_weights')


@pytest.mark.parametrize('num_convs', [1, 2])
def test_rpn_head_normal_init_reaches_the_compconv(num_convs):
    from test_heads import rpn_cfg
    torch.manual_seed(0)
    head = MODELS.build(rpn_cfg(num_convs=num_convs))
    head.init_weights()
    convs = sub_convs(head)
    assert convs
    # RPNHead's init_cfg: Normal(layer='Conv2d', std=0.01); Kaiming would give ~0.07 here
    for conv in convs:
        assert conv.weight.std().item() == pytest.approx(0.01, rel=0.25)


def test_backbone_init_cfg_reaches_block_compconvs():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='CompConvResNet', depth=18, base_channels=16,
                              init_cfg=[dict(type='Normal', layer='Conv2d', std=0.001)]))
    model.init_weights()
    convs = sub_convs(model)
    assert len(convs) > 10
    assert model.conv1.weight.std().item() == pytest.approx(0.001, rel=0.2)
    for conv in convs:
        if conv.weight.numel() >= 64:
            assert conv.weight.std().item() == pytest.approx(0.001, rel=0.35)


def test_default_resnet_init_is_kaiming_fan_out_for_compconvs_too():
    """ResNet's default init_cfg (Kaiming on Conv2d) gives the sub-convs CompConv's own
    construction-time distribution: std = sqrt(2 / fan_out)."""
    torch.manual_seed(0)
    model = MODELS.build(dict(type='CompConvResNet', depth=50, compconv_layers=('conv2', )))
    conv = model.layer4[1].conv2.convs[0]  # 512 -> 37, 3x3
    nn.init.zeros_(conv.weight)  # so that only init_weights can give the distribution below
    model.init_weights()
    fan_out = conv.out_channels * 9
    assert conv.weight.std().item() == pytest.approx((2 / fan_out)**0.5, rel=0.05)


def test_conv_module_keeps_construction_init():
    from mmcv.cnn import ConvModule
    torch.manual_seed(0)
    m = ConvModule(256, 256, 3, padding=1, conv_cfg=dict(type='CompConv'),
                   norm_cfg=dict(type='BN'))
    conv = m.conv.convs[0]
    before = conv.weight.detach().clone()
    m.init_weights()  # ConvModule's own kaiming_init cannot see a CompConv's sub-convs
    assert torch.equal(conv.weight, before)
    assert conv.weight.std().item() == pytest.approx((2 / (conv.out_channels * 9))**0.5,
                                                     rel=0.05)
