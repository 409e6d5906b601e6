"""CompConvFPN / CompConvPAFPN: mmdet's test_fpn cases ported (shapes asserted), plus CompConv."""
import pytest
import torch
from mmdet.models.necks import FPN, PAFPN
from mmdet.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet_compconv import CompConv
from mmdet_compconv.models import CompConvFPN, CompConvPAFPN
from mmdet_compconv.cnn import conv_layers, count_macs

S = 64
IN_CHANNELS = [8, 16, 32, 64]
OUT = 8


@pytest.fixture
def feats():
    torch.manual_seed(0)
    return [torch.rand(1, c, S // 2**i, S // 2**i) for i, c in enumerate(IN_CHANNELS)]


def out_shapes(neck, feats):
    return [tuple(o.shape) for o in neck(feats)]


def expected(num_outs, start_level=1):
    """Output i of an FPN starting at ``start_level`` has the size of input level i + start."""
    return [(1, OUT, S // 2**(i + start_level), S // 2**(i + start_level)) for i in range(num_outs)]


def compconv_names(model):
    return {n for n, m in model.named_modules() if isinstance(m, CompConv)}


def test_fpn_level_arguments():
    CompConvFPN(IN_CHANNELS, OUT, start_level=0, end_level=-1, num_outs=5)
    CompConvFPN(IN_CHANNELS, OUT, start_level=0, end_level=3, num_outs=5)
    for kwargs in (dict(start_level=1, end_level=2, num_outs=3),
                   dict(start_level=1, num_outs=2),
                   dict(start_level=1, end_level=4, num_outs=2),
                   dict(start_level=1, end_level=3, num_outs=1),
                   dict(start_level=1, add_extra_convs='on_xxx', num_outs=5)):
        with pytest.raises(AssertionError):
            CompConvFPN(IN_CHANNELS, OUT, **kwargs)


@pytest.mark.parametrize('kwargs, mode', [
    (dict(add_extra_convs=True), 'on_input'),
    (dict(add_extra_convs=False), False),
    (dict(add_extra_convs=True, no_norm_on_lateral=False,
          norm_cfg=dict(type='BN', requires_grad=True)), 'on_input'),
    (dict(add_extra_convs=True, upsample_cfg=dict(mode='bilinear', align_corners=True)),
     'on_input'),
    (dict(add_extra_convs=True, upsample_cfg=dict(scale_factor=2)), 'on_input'),
    (dict(add_extra_convs='on_input'), 'on_input'),
    (dict(add_extra_convs='on_lateral'), 'on_lateral'),
    (dict(add_extra_convs='on_output'), 'on_output'),
])
def test_fpn_forward(feats, kwargs, mode):
    neck = CompConvFPN(IN_CHANNELS, OUT, start_level=1, num_outs=5, **kwargs)
    assert neck.add_extra_convs == mode
    assert out_shapes(neck, feats) == expected(5)
    if 'norm_cfg' in kwargs:
        assert any(isinstance(m, _BatchNorm) for m in neck.modules())
    # same shapes as mmdet's FPN
    assert out_shapes(neck, feats) == out_shapes(FPN(IN_CHANNELS, OUT, start_level=1, num_outs=5,
                                                     **kwargs), feats)


def test_fpn_forward_start_level_0(feats):
    neck = CompConvFPN(IN_CHANNELS, OUT, num_outs=5)
    assert out_shapes(neck, feats) == expected(5, start_level=0)
    with pytest.raises(AssertionError):  # one input per in_channels entry
        neck(feats[:3])


@pytest.mark.parametrize('convs, names', [
    (None, {f'lateral_convs.{i}.conv' for i in range(3)} | {f'fpn_convs.{i}.conv'
                                                             for i in range(3)}),
    (('lateral', ), {f'lateral_convs.{i}.conv' for i in range(3)}),
    (('fpn', 'extra'), {f'fpn_convs.{i}.conv' for i in range(5)}),
    (('extra', ), {'fpn_convs.3.conv', 'fpn_convs.4.conv'}),
])
def test_fpn_which_convs(feats, convs, names):
    neck = CompConvFPN(IN_CHANNELS, OUT, start_level=1, add_extra_convs='on_input', num_outs=5,
                       compconv_convs=convs)
    assert compconv_names(neck) == names
    assert out_shapes(neck, feats) == expected(5)
    assert neck.fpn_convs[3].conv.in_channels == IN_CHANNELS[-1]  # on_input
    assert neck.fpn_convs[3].conv.stride == (2, 2)
    # ConvModule still exposes the conv's geometry
    assert neck.lateral_convs[0].in_channels == 16 and neck.lateral_convs[0].kernel_size == (1, 1)


def test_fpn_bias_follows_conv_module():
    neck = CompConvFPN(IN_CHANNELS, OUT, num_outs=4)
    assert all(m.bias is not None for m in neck.modules() if isinstance(m, CompConv))
    neck = CompConvFPN(IN_CHANNELS, OUT, num_outs=4, norm_cfg=dict(type='BN'))
    assert all(m.bias is None for m in neck.modules() if isinstance(m, CompConv))


def test_fpn_plain_and_errors():
    neck = CompConvFPN(IN_CHANNELS, OUT, num_outs=4, compconv_cfg=None)
    assert compconv_names(neck) == set() and neck.compconv_convs == ()
    with pytest.raises(ValueError, match=r"names \['pafpn'\]; CompConvFPN has \('lateral', "
                                         r"'fpn', 'extra'\)"):
        CompConvFPN(IN_CHANNELS, OUT, num_outs=4, compconv_convs=('lateral', 'pafpn'))
    with pytest.raises(ValueError, match=r"asks for \['extra'\].*add_extra_convs=False"):
        CompConvFPN(IN_CHANNELS, OUT, num_outs=5, compconv_convs=('extra', ))
    with pytest.raises(TypeError, match='compconv_cfg must be None or a dict'):
        CompConvFPN(IN_CHANNELS, OUT, num_outs=4, compconv_cfg='CompConv')
    with pytest.raises(ValueError, match='CompConv depth=3 does not fit in_channels=8'):
        CompConvFPN(IN_CHANNELS, OUT, num_outs=4, compconv_cfg=dict(type='CompConv', depth=3))


def test_fpn_compconv_convs_as_a_single_name():
    """Issue 12.8: a string was split into characters."""
    neck = CompConvFPN(IN_CHANNELS, OUT, num_outs=4, compconv_convs='lateral')
    assert neck.compconv_convs == ('lateral', )
    assert compconv_names(neck) == compconv_names(
        CompConvFPN(IN_CHANNELS, OUT, num_outs=4, compconv_convs=('lateral', )))


def test_fpn_registry_init_backward_and_macs(feats):
    neck = MODELS.build(dict(type='CompConvFPN', in_channels=[64, 128, 256], out_channels=64,
                             num_outs=4, compconv_cfg=dict(type='CompConv', c0=32)))
    assert type(neck) is CompConvFPN and isinstance(neck, FPN)
    assert [neck.lateral_convs[i].conv.depth for i in range(3)] == [2, 3, 3]
    neck.init_weights()
    x = [torch.rand(1, c, 32 // 2**i, 32 // 2**i, requires_grad=True)
         for i, c in enumerate([64, 128, 256])]
    outs = neck(x)
    assert [tuple(o.shape) for o in outs] == [(1, 64, 32, 32), (1, 64, 16, 16), (1, 64, 8, 8),
                                              (1, 64, 4, 4)]
    sum(o.sum() for o in outs).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in neck.parameters())
    assert all(t.grad is not None for t in x)
    # counted MACs are the analytic sum, and well below the plain FPN's
    with torch.no_grad():
        convs = conv_layers(neck, x)
        assert len(convs) == 6
        assert count_macs(neck, x) == sum(c.macs for c in convs)
        plain = FPN([64, 128, 256], 64, num_outs=4)
        assert count_macs(neck, x) < 0.5 * count_macs(plain, x)


def test_pafpn(feats):
    neck = CompConvPAFPN(IN_CHANNELS, OUT, start_level=1, add_extra_convs=True, num_outs=5)
    assert isinstance(neck, PAFPN)
    assert compconv_names(neck) == (
        {f'lateral_convs.{i}.conv' for i in range(3)} | {f'fpn_convs.{i}.conv' for i in range(3)}
        | {f'downsample_convs.{i}.conv' for i in range(2)}
        | {f'pafpn_convs.{i}.conv' for i in range(2)})
    assert neck.downsample_convs[0].conv.stride == (2, 2)
    assert out_shapes(neck, feats) == expected(5)
    assert out_shapes(neck, feats) == out_shapes(
        PAFPN(IN_CHANNELS, OUT, start_level=1, add_extra_convs=True, num_outs=5), feats)

    neck = MODELS.build(dict(type='CompConvPAFPN', in_channels=IN_CHANNELS, out_channels=OUT,
                             num_outs=4, compconv_convs=('downsample', )))
    assert compconv_names(neck) == {f'downsample_convs.{i}.conv' for i in range(3)}
    assert out_shapes(neck, feats) == expected(4, start_level=0)
    with pytest.raises(ValueError, match=r"names \['bogus'\]"):
        CompConvPAFPN(IN_CHANNELS, OUT, num_outs=4, compconv_convs=('bogus', ))
