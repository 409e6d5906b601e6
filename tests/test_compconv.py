"""Tests of the CompConv operator against ``docs/compconv-spec.md``."""
import math
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from mmdet_compconv import (CompConv, adaptive_depth, compconv_macs, compconv_params,
                            plan_channels, shuffle_permutation)

# Spec §4 worked values: (C, d, C_p, units, e, n_tail, MACs per pixel / k^2).
WORKED = [
    (64, 1, 32, (32, 32), 0, 32, 2080),
    (256, 2, 43, (43, 43, 86, 86), 2, 84, 18488),
    (512, 3, 37, (37, 37, 74, 74, 148, 148), 6, 142, 46466),
]


def counted_macs(module: nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() // 2


@pytest.mark.parametrize('c,d,cp,units,e,n_tail,per_pixel', WORKED)
def test_worked_table(c, d, cp, units, e, n_tail, per_pixel):
    from mmengine.analysis import FlopAnalyzer
    conv = CompConv(c, c, 3, padding=1, bias=False, c0=128)
    plan = conv.plan
    assert (plan.depth, plan.prim_channels, plan.units, plan.overflow, plan.tail_channels) == \
        (d, cp, units, e, n_tail)
    h, w = 6, 5
    analytic = compconv_macs(conv, (h, w))
    assert analytic == 9 * per_pixel * h * w
    x = torch.rand(1, c, h, w)
    assert counted_macs(conv, x) == analytic
    assert FlopAnalyzer(conv, (x, )).unsupported_ops_warnings(False).total() == analytic
    assert sum(p.numel() for p in conv.parameters()) == compconv_params(conv) == 9 * per_pixel
    assert round(analytic / (9 * c * c * h * w), 4) == {64: 0.5078, 256: 0.2821, 512: 0.1773}[c]


@pytest.mark.parametrize('tail,per_pixel', [('depthwise', 9 * 18404 + 9 * 84),
                                            ('pointwise', 9 * 18404 + 84),
                                            ('full', 9 * 18404 + 9 * 84 * 84)])
def test_tail_costs(tail, per_pixel):
    conv = CompConv(256, 256, 3, padding=1, tail=tail, bias=True)
    assert compconv_macs(conv, (1, 1)) == per_pixel
    assert counted_macs(conv, torch.rand(1, 256, 4, 4)) == 16 * per_pixel
    assert sum(p.numel() for p in conv.parameters()) == compconv_params(conv) == per_pixel + 256


def test_strided_macs_count_at_output_size():
    conv = CompConv(256, 128, 3, stride=2, padding=1)
    x = torch.rand(1, 256, 9, 7)
    assert conv(x).shape[-2:] == (5, 4)
    assert counted_macs(conv, x) == compconv_macs(conv, (5, 4))


@pytest.mark.parametrize('c_in,expected', [(1, 1), (64, 1), (127, 1), (128, 1), (255, 1),
                                           (256, 2), (511, 2), (512, 3), (4096, 3)])
def test_adaptive_depth(c_in, expected):
    assert adaptive_depth(c_in, 128) == expected


def test_adaptive_depth_c0_and_cap():
    assert adaptive_depth(512, 256) == 2  # a larger C_0 compresses less
    assert adaptive_depth(512, 64) == 3
    assert adaptive_depth(4096, 128, max_depth=2) == 2
    assert adaptive_depth(4096, 128, max_depth=0) == 0


def test_adaptive_depth_drops_until_valid():
    # 256 -> 3: d=2 gives C_p=1, e=3 and an empty A_0, so the depth drops to 1 (C_p=2, e=1).
    plan = plan_channels(256, 3)
    assert (plan.depth, plan.prim_channels, plan.overflow) == (1, 2, 1)
    # 400 -> 2048 with C_0=50: d=3 gives C_p=147, whose identity slices need 441 > 400
    # input channels, so the depth drops to 2 (C_p=342, 342 identity channels, e=4).
    plan = plan_channels(400, 2048, c0=50)
    assert (plan.depth, plan.prim_channels, plan.overflow) == (2, 342, 4)
    assert plan_channels(441, 2048, c0=50).depth == 3


def test_depth_zero_is_a_plain_conv():
    conv = CompConv(8, 12, 3, stride=2, padding=2, dilation=2, depth=0)
    ref = nn.Conv2d(8, 12, 3, 2, 2, 2)
    with torch.no_grad():
        ref.weight.copy_(conv.convs[0].weight)
        ref.bias.copy_(torch.randn(12))
        conv.bias.copy_(ref.bias)
    x = torch.randn(2, 8, 11, 9)
    torch.testing.assert_close(conv(x), ref(x))
    assert conv.tail is None and conv.prim_channels == 12


def reference(conv: CompConv, x: torch.Tensor, c0, depth, tail, shuffle) -> torch.Tensor:
    """The spec's data flow (§2, §3) written out independently, fed the module's weights."""
    c_in, c_out, k = x.shape[1], conv.out_channels, conv.kernel_size[0]
    s, dil = conv.stride[0], conv.dilation[0]
    pad = dil * (k - 1) // 2
    if depth is None:
        d = min(int(math.floor(math.log2(max(1, c_in / c0)))) + 1, 3)
        while d > 0:
            cp = math.ceil(c_out / (2 * (2**d - 1)))
            e = 2 * (2**d - 1) * cp - c_out
            if c_in >= (2**(d - 1) - 1) * cp and e < 2**(d - 1) * cp:
                break
            d -= 1
    else:
        d = depth
    assert d == conv.depth
    if d == 0:
        return F.conv2d(x, conv.convs[0].weight, conv.bias, s, pad, dil)
    cp = math.ceil(c_out / (2 * (2**d - 1)))
    e = 2 * (2**d - 1) * cp - c_out
    B = {d - 1: F.conv2d(x, conv.convs[0].weight, None, s, pad, dil)}
    A = {}
    offset = 0
    for i in range(d - 1, 0, -1):
        width = 2**(d - 1 - i) * cp
        a = x[:, offset:offset + width]
        offset += width
        if s > 1:
            a = F.avg_pool2d(a, s, s, ceil_mode=True, count_include_pad=False)
        A[i] = a
        B[i - 1] = F.conv2d(torch.cat([B[i], A[i]], 1), conv.convs[d - i].weight, None, 1, pad, dil)
    n = 2**(d - 1) * cp - e
    src = B[0][:, :n]
    w = conv.tail.weight
    if tail == 'depthwise':
        A[0] = F.conv2d(src, w, None, 1, pad, dil, groups=n)
    elif tail == 'pointwise':
        A[0] = src * w.view(1, n, 1, 1)
    else:
        A[0] = F.conv2d(src, w, None, 1, pad, dil)
    out = torch.cat([t for i in range(d - 1, -1, -1) for t in (B[i], A[i])], 1)
    assert out.shape[1] == c_out
    if shuffle:
        half = (c_out + 1) // 2
        chans = []
        for m in range(half):
            chans.append(out[:, m])
            if half + m < c_out:
                chans.append(out[:, half + m])
        out = torch.stack(chans, 1)
    if conv.bias is not None:
        out = out + conv.bias.view(1, -1, 1, 1)
    return out


CASES = [
    # c_in, c_out, k, stride, dilation, c0, depth, tail, shuffle, size
    (64, 64, 3, 1, 1, 128, None, 'depthwise', True, (8, 8)),
    (256, 256, 3, 1, 1, 128, None, 'depthwise', True, (6, 7)),
    (512, 512, 3, 2, 1, 128, None, 'depthwise', True, (9, 7)),
    (96, 77, 3, 2, 1, 16, None, 'full', True, (7, 5)),
    (40, 13, 1, 1, 1, 8, None, 'pointwise', False, (5, 5)),
    (40, 13, 1, 2, 1, 8, 2, 'depthwise', True, (5, 5)),
    (24, 31, 5, 1, 2, 4, 3, 'depthwise', True, (9, 9)),
    (16, 3, 3, 1, 1, 4, None, 'depthwise', True, (5, 5)),  # adaptive depth must drop
    (3, 64, 7, 2, 1, 128, None, 'depthwise', True, (11, 13)),  # a stem
    (33, 50, 3, 3, 1, 8, None, 'full', False, (10, 8)),
    (20, 20, 3, 1, 1, 128, 0, 'depthwise', True, (4, 4)),
]


@pytest.mark.parametrize('c_in,c_out,k,s,dil,c0,depth,tail,shuffle,size', CASES)
def test_matches_reference(c_in, c_out, k, s, dil, c0, depth, tail, shuffle, size):
    torch.manual_seed(0)
    conv = CompConv(c_in, c_out, k, s, dil * (k - 1) // 2, dil, bias=True, c0=c0, depth=depth,
                    tail=tail, shuffle=shuffle)
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, c_in, *size)
    out = conv(x)
    expected_hw = tuple(math.ceil(v / s) for v in size)
    assert out.shape == (2, c_out, *expected_hw)
    torch.testing.assert_close(out, reference(conv, x, c0, depth, tail, shuffle))


def test_reference_catches_a_wrong_shuffle():
    conv = CompConv(64, 64, 3, padding=1)
    x = torch.randn(1, 64, 5, 5)
    assert not torch.allclose(conv(x), reference(conv, x, 128, None, 'depthwise', False))


@pytest.mark.parametrize('stride', [1, 2])
def test_identity_channels_are_the_named_input_slices(stride):
    conv = CompConv(512, 512, 3, stride=stride, padding=1, shuffle=False, bias=False)
    cp = conv.prim_channels
    x = torch.randn(1, 512, 7, 9)
    out = conv(x)
    src = x if stride == 1 else F.avg_pool2d(x, 2, 2, ceil_mode=True, count_include_pad=False)
    torch.testing.assert_close(out[:, cp:2 * cp], src[:, 0:cp])  # A_2
    torch.testing.assert_close(out[:, 4 * cp:6 * cp], src[:, cp:3 * cp])  # A_1
    # the odd last row/column is pooled from what exists (count_include_pad=False)
    if stride == 2:
        torch.testing.assert_close(out[:, cp, -1, -1], x[:, 0, -1, -1])


def test_shuffle_permutation():
    assert shuffle_permutation(6).tolist() == [0, 3, 1, 4, 2, 5]
    assert shuffle_permutation(6).tolist() == torch.arange(6).view(2, 3).t().flatten().tolist()
    assert shuffle_permutation(7).tolist() == [0, 4, 1, 5, 2, 6, 3]
    assert sorted(shuffle_permutation(77).tolist()) == list(range(77))


def test_gradients_reach_every_parameter():
    conv = CompConv(128, 96, 3, stride=2, padding=1, c0=32, tail='full')
    x = torch.randn(2, 128, 6, 6, requires_grad=True)
    conv(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in conv.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradcheck():
    conv = CompConv(12, 10, 3, stride=2, padding=1, c0=3).double()
    assert conv.depth == 2
    x = torch.randn(1, 12, 5, 5, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(conv, (x, ))


def test_jit_trace_and_bf16_autocast():
    conv = CompConv(64, 48, 3, padding=1, c0=16).eval()
    x = torch.randn(1, 64, 8, 8)
    traced = torch.jit.trace(conv, x)
    torch.testing.assert_close(traced(x), conv(x))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = conv(x)
    assert y.shape == (1, 48, 8, 8) and torch.isfinite(y.float()).all()


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('kwargs', [dict(depth=0), dict(c0=16), dict(c0=16, bias=True),
                                    dict(c0=16, stride=2, tail='full')])
def test_autocast_output_dtype_matches_conv2d(dtype, kwargs):
    """Issue 12.10: the identity slices and the bias add used to promote to float32."""
    conv = CompConv(64, 48, 3, padding=1, **dict(dict(bias=False), **kwargs)).eval()
    dense = nn.Conv2d(64, 48, 3, padding=1)
    x = torch.randn(1, 64, 8, 8)
    with torch.autocast('cpu', dtype=dtype):
        expected = dense(x).dtype
        y = conv(x)
    assert expected == dtype and y.dtype == expected
    assert torch.allclose(y.float(), conv(x), atol=0.1, rtol=0.05)


@pytest.mark.parametrize('kwargs', [dict(shuffle=False), dict(), dict(stride=2),
                                    dict(depth=0, bias=True), dict(c0=8, tail='full')])
def test_unbatched_input_like_conv2d(kwargs):
    """Issue 12.4: (C, H, W) used to return a wrong shape or fail to unpack."""
    conv = CompConv(64, 64, 3, padding=1, **dict(dict(bias=False), **kwargs))
    x = torch.randn(64, 8, 8)
    dense = nn.Conv2d(64, 64, 3, padding=1, stride=conv.stride)
    y = conv(x)
    assert y.shape == dense(x).shape
    torch.testing.assert_close(y, conv(x[None])[0])
    for bad in (torch.randn(8, 8), torch.randn(1, 1, 64, 8, 8)):
        with pytest.raises(ValueError, match=r'CompConv takes a \(N, C, H, W\) or \(C, H, W\) '
                           rf'input, got shape {re.escape(str(tuple(bad.shape)))}'):
            conv(bad)


def test_conv_layers_of_a_bare_compconv_is_itself():
    """Issue 12.5: a CompConv given as the model was listed with its sub-convs (MACs twice)."""
    from mmdet_compconv import conv_layers, count_macs
    conv = CompConv(64, 64, 3, padding=1, bias=False)
    x = torch.randn(1, 64, 8, 8)
    layers = conv_layers(conv, x)
    assert [(c.name, c.module) for c in layers] == [('', conv)]
    assert sum(c.macs for c in layers) == count_macs(conv, x) == 1198080


def test_attributes_read_by_conv_module():
    conv = CompConv(16, 32, 3, stride=2, padding=2, dilation=2, bias=False)
    assert (conv.in_channels, conv.out_channels) == (16, 32)
    assert conv.kernel_size == (3, 3) and conv.stride == (2, 2)
    assert conv.padding == (2, 2) and conv.dilation == (2, 2)
    assert conv.groups == 1 and conv.transposed is False and conv.output_padding == (0, 0)
    assert conv.bias is None and not isinstance(conv, nn.Conv2d)
    assert CompConv(16, 32, 3, padding='same').padding == (1, 1)


def test_build_conv_layer_without_default_scope():
    # A fresh interpreter has no default scope: the plain-unit-test case of the stack notes.
    import subprocess
    import sys
    code = ('import mmdet_compconv\n'
            'from mmengine.registry import DefaultScope\n'
            'from mmcv.cnn import build_conv_layer\n'
            'assert DefaultScope.get_current_instance() is None\n'
            "c = build_conv_layer(dict(type='CompConv', c0=64), 128, 128, 3, stride=2, padding=1,"
            ' dilation=1, bias=False)\n'
            'print(type(c).__name__, c.depth, c.c0)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ['CompConv', '2', '64']


def test_build_conv_layer_and_conv_module_in_mmdet_scope():
    from mmcv.cnn import ConvModule, build_conv_layer
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        conv = build_conv_layer(dict(type='CompConv'), 8, 8, 1)
        assert isinstance(conv, CompConv) and conv.depth == 1
        module = ConvModule(32, 64, 3, padding=1, conv_cfg=dict(type='CompConv', depth=1),
                            norm_cfg=dict(type='BN'))
    assert isinstance(module.conv, CompConv) and module.conv.bias is None  # bias='auto' + norm
    assert module(torch.randn(2, 32, 6, 6)).shape == (2, 64, 6, 6)


@pytest.mark.parametrize('kwargs,match', [
    (dict(kernel_size=2), 'odd kernel_size'),
    (dict(kernel_size=(3, 5), padding=1), 'square'),
    (dict(padding=0), 'only "same" padding .* = 1'),
    (dict(padding=2, dilation=1), r'padding=2'),
    (dict(padding='same', stride=2), "padding='same' needs stride 1"),
    (dict(groups=2), 'groups=2'),
    (dict(padding_mode='reflect'), "padding_mode='zeros' only, got 'reflect'"),
    (dict(c0=0), 'finite c0 > 0, got c0=0'),
    (dict(c0=-8), 'c0=-8'),
    (dict(depth=4), 'integer depth in 0..3 or None, got depth=4'),
    (dict(max_depth=5), 'integer max_depth in 0..3, got max_depth=5'),
    # issue 12.8: 2.0 in range(4) is True, so floats used to pass and fail later
    (dict(depth=2.0), r'integer depth in 0..3 or None, got depth=2.0'),
    (dict(max_depth=3.0), r'integer max_depth in 0..3, got max_depth=3.0'),
    (dict(depth=True), r'got depth=True'),
    (dict(c0=float('nan')), 'finite c0 > 0, got c0=nan'),
    (dict(c0=float('inf')), 'finite c0 > 0, got c0=inf'),
    (dict(tail='grouped'), "tail must be one of .*'grouped'"),
    (dict(stride=0), 'square, positive stride'),
    (dict(in_channels=0), 'positive integer in_channels, got 0'),
    (dict(out_channels=2.5), 'positive integer out_channels, got 2.5'),
])
def test_errors(kwargs, match):
    args = dict(in_channels=16, out_channels=16, kernel_size=3, padding=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        CompConv(**args)


def test_tiny_c0_is_the_deepest_plan_not_an_overflow():
    """Issue 12.8: c0=1e-320 raised OverflowError while doubling c0 towards C_in."""
    conv = CompConv(16, 16, 3, padding=1, c0=1e-320)
    assert conv.depth == plan_channels(16, 16, c0=1).depth == 2  # d=3 would leave A_0 empty (e=12)
    assert adaptive_depth(16, 1e-320, max_depth=2) == 2


def test_explicit_depth_that_does_not_fit():
    # d=3 for 8 -> 64: C_p = 5, the identity slices need 15 input channels.
    with pytest.raises(ValueError, match=r'depth=3 .* in_channels=8 < .* = 15'):
        CompConv(8, 64, 3, padding=1, depth=3)
    # d=3 for 64 -> 3: C_p = 1, e = 11 empties A_0.
    with pytest.raises(ValueError, match=r'overflow e=11 would leave A_0 empty'):
        CompConv(64, 3, 3, padding=1, depth=3)
