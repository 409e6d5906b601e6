"""The optional SIMD-aligned channel plan (C_p rounded up to a multiple), outside the spec."""
import pytest
import torch

from mmdet_compconv import CompConv, plan_channels
from mmdet_compconv.deployment import ExportCompConv


@pytest.mark.parametrize('channels,multiple,expected', [
    (256, 1, (2, 43, 2, 84)),  # the spec's plan (worked values of spec §4)
    (256, 16, (2, 48, 32, 64)),
    (512, 8, (3, 40, 48, 112)),
    (512, 16, (3, 48, 160, 32)),
    (64, 16, (1, 32, 0, 32)),  # already aligned
])
def test_prim_multiple_rounds_c_p_up(channels, multiple, expected):
    p = plan_channels(channels, channels, prim_multiple=multiple)
    assert (p.depth, p.prim_channels, p.overflow, p.tail_channels) == expected


def test_prim_multiple_lowers_an_adaptive_depth_that_no_longer_fits():
    # C_out = 24 at d = 2: C_p = 4 -> 16 would leave A_0 empty (e = 72 >= 32), so d drops to 1
    assert plan_channels(256, 24, prim_multiple=16).depth == 1
    with pytest.raises(ValueError, match='would leave A_0 empty'):
        plan_channels(256, 24, depth=2, prim_multiple=16)
    for bad in (0, -8, 2.0, True):
        with pytest.raises(ValueError, match=f'prim_multiple, got {bad!r}'):
            plan_channels(64, 64, prim_multiple=bad)


def test_aligned_compconv_runs_and_exports():
    conv = CompConv(512, 512, 3, padding=1, prim_multiple=16).eval()
    assert conv.prim_channels == 48 and 'prim_channels=48' in repr(conv)
    x = torch.randn(1, 512, 5, 5)
    with torch.no_grad():
        assert torch.allclose(ExportCompConv(conv, materialize=True)(x), conv(x), atol=1e-4)
