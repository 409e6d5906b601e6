"""Issue 12.7: mmcv ConvModule options that need ``conv.weight`` are refused at build time."""
import pytest
import torch
from mmcv.cnn import ConvModule

from mmdet_compconv import CompConv
from mmdet_compconv.cnn import builds_compconv, check_conv_module_options

COMPCONV = dict(type='CompConv')


@pytest.mark.parametrize('kwargs,match', [
    (dict(with_spectral_norm=True), r'ConvModule\(with_spectral_norm=True\) cannot wrap a '
     r'CompConv'),
    (dict(padding_mode='reflect'), r"ConvModule\(padding_mode='reflect'\) cannot wrap a "
     r"CompConv: .* use padding_mode='zeros'"),
    (dict(padding_mode='circular'), r"ConvModule\(padding_mode='circular'\)"),
    (dict(efficient_conv_bn_eval=True, norm_cfg=dict(type='BN')),
     r'ConvModule\(efficient_conv_bn_eval=True\) cannot wrap a CompConv: .*switch_to_deploy'),
])
@pytest.mark.parametrize('conv_cfg', [COMPCONV, dict(type='CompConv', c0=16),
                                      dict(type=CompConv)])
def test_conv_module_refuses_options_a_compconv_cannot_take(kwargs, match, conv_cfg):
    with pytest.raises(ValueError, match=match):
        ConvModule(16, 16, 3, padding=1, conv_cfg=conv_cfg, **kwargs)


def test_efficient_conv_bn_eval_turned_on_later_is_refused():
    m = ConvModule(16, 16, 3, padding=1, conv_cfg=COMPCONV, norm_cfg=dict(type='BN'))
    with pytest.raises(ValueError, match=r'efficient_conv_bn_eval=True'):
        m.turn_on_efficient_conv_bn_eval()
    m.turn_on_efficient_conv_bn_eval(False)  # turning it off is fine
    assert m.efficient_conv_bn_eval_forward is None


def test_plain_conv_modules_keep_every_option():
    x = torch.randn(1, 8, 6, 6)
    for kwargs in (dict(with_spectral_norm=True), dict(padding_mode='reflect'),
                   dict(efficient_conv_bn_eval=True, norm_cfg=dict(type='BN'))):
        m = ConvModule(8, 8, 3, padding=1, **kwargs).eval()
        assert m(x).shape == (1, 8, 6, 6)
    m = ConvModule(8, 8, 3, 1, 1, conv_cfg=COMPCONV, norm_cfg=dict(type='BN')).eval()
    assert m(x).shape == (1, 8, 6, 6)


def test_builds_compconv():
    assert builds_compconv(COMPCONV) and builds_compconv(dict(type=CompConv))
    assert not builds_compconv(None) and not builds_compconv(dict(type='Conv2d'))
    assert not builds_compconv(dict(type='NoSuchConv'))
    check_conv_module_options(dict(type='Conv2d'), with_spectral_norm=True)  # not ours: no-op
