"""Deploy mode: faster, numerically equivalent inference forms of CompConv models."""
import copy

import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.runner import load_checkpoint, save_checkpoint

from mmdet_compconv import (CompConv, DeployedCompConv, collapse_pointwise, switch_to_deploy)


def trained_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN statistics and affine parameters, as a trained model has (gamma near 0 too)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=g) * 0.5)
            m.weight.data[::7] = 0  # dead channels must not break the folding
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
        if isinstance(m, CompConv) and m.bias is not None:
            m.bias.data.copy_(torch.randn(m.out_channels, generator=g))
    return model.eval()


def assert_close_rel(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-5) -> None:
    scale = b.abs().max().clamp_min(1e-6)
    assert ((a - b).abs().max() / scale).item() < rel


def deploys_equivalently(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """``switch_to_deploy(model)``, checking that its output on ``x`` does not change."""
    with torch.no_grad():
        y = model(x)
        switch_to_deploy(model)
        assert_close_rel(model(x), y)
    return model


LAYERS = [
    # c_in, c_out, k, stride, kwargs
    (64, 64, 3, 1, {}),
    (256, 256, 3, 2, {}),
    (512, 512, 3, 1, dict(tail='full')),
    (96, 77, 3, 2, dict(c0=16, tail='pointwise')),
    (256, 64, 1, 1, dict(shuffle=False)),
    (30, 45, 5, 1, dict(c0=4, bias=True)),
    (16, 16, 3, 1, dict(depth=0, bias=True)),
]


@pytest.mark.parametrize('c_in,c_out,k,s,kwargs', LAYERS)
@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('with_norm', [False, True])
def test_deployed_compconv_equals_train_form(c_in, c_out, k, s, kwargs, channels_last, with_norm):
    kwargs = dict(dict(bias=False), **kwargs)
    conv = CompConv(c_in, c_out, k, s, k // 2, **kwargs)
    norm = nn.BatchNorm2d(c_out) if with_norm else None
    ref = trained_like(nn.Sequential(conv, *([norm] if norm is not None else [])))
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(2, c_in, 9, 7).to(memory_format=fmt)
    deployed = DeployedCompConv(conv, norm).eval()
    with torch.no_grad():
        out = deployed(x)
        assert_close_rel(out, ref(x))
    assert out.is_contiguous(memory_format=fmt)


def test_collapse_pointwise():
    conv = CompConv(256, 64, 1, bias=True)
    norm = nn.BatchNorm2d(64)
    ref = trained_like(nn.Sequential(conv, norm))
    dense = collapse_pointwise(conv, norm)
    assert isinstance(dense, nn.Conv2d) and dense.weight.shape == (64, 256, 1, 1)
    x = torch.randn(2, 256, 5, 4)
    with torch.no_grad():
        assert_close_rel(dense(x), ref(x))
    assert not conv.training and not norm.training  # modes untouched
    with pytest.raises(ValueError, match=r'kernel_size=\(3, 3\), stride=\(1, 1\)'):
        collapse_pointwise(CompConv(8, 8, 3, padding=1))
    with pytest.raises(ValueError, match=r'kernel_size=\(1, 1\), stride=\(2, 2\)'):
        collapse_pointwise(CompConv(8, 8, 1, stride=2))


# Issue 12.1: a BatchNorm is folded only when it consumes the CompConv's output; ConvModule
# registers conv before norm whatever its order.
@pytest.mark.parametrize('order,folds', [(('conv', 'norm', 'act'), True),
                                         (('norm', 'conv', 'act'), False),
                                         (('conv', 'act', 'norm'), False),
                                         (('act', 'norm', 'conv'), False)])
def test_switch_to_deploy_folds_the_conv_module_norm_only_after_the_conv(order, folds):
    m = deploys_equivalently(
        trained_like(ConvModule(64, 64, 3, padding=1, conv_cfg=dict(type='CompConv'),
                                norm_cfg=dict(type='BN'), order=order)), torch.randn(2, 64, 8, 8))
    assert isinstance(m.conv, DeployedCompConv)
    assert isinstance(m.bn, nn.Identity if folds else nn.BatchNorm2d)


def test_switch_to_deploy_leaves_other_norms():
    # GroupNorm cannot be folded: it stays, and the CompConv deploys alone.
    m = deploys_equivalently(
        trained_like(ConvModule(32, 32, 3, padding=1, conv_cfg=dict(type='CompConv'),
                                norm_cfg=dict(type='GN', num_groups=4))), torch.randn(1, 32, 6, 6))
    assert isinstance(m.gn, nn.GroupNorm)


def test_deployed_model_runs_without_no_grad_but_does_not_backpropagate():
    m = trained_like(ConvModule(16, 16, 3, padding=1, conv_cfg=dict(type='CompConv'),
                                norm_cfg=dict(type='BN')))
    switch_to_deploy(m)
    assert not any(p.requires_grad for p in m.parameters())
    assert m(torch.randn(1, 16, 5, 5)).shape == (1, 16, 5, 5)
    with pytest.raises(RuntimeError, match='inference form and does not backpropagate'):
        m(torch.randn(1, 16, 5, 5, requires_grad=True))


def test_compconv_switch_to_deploy_in_place(tmp_path):
    conv = trained_like(nn.Sequential(CompConv(32, 48, 3, 2, 1, bias=True)))[0]
    x = torch.randn(1, 32, 9, 11)
    with torch.no_grad():
        ref = conv(x)
        assert conv.switch_to_deploy() is conv
        assert isinstance(conv.deployed, DeployedCompConv) and conv.bias is None
        assert not hasattr(conv, 'convs') and not hasattr(conv, 'tail')
        assert_close_rel(conv(x), ref)
        before = conv.deployed
        assert conv.switch_to_deploy().deployed is before  # switching twice changes nothing
        # deployed weights load into a fresh module once it is switched too
        torch.save(conv.state_dict(), tmp_path / 'conv.pth')
        other = CompConv(32, 48, 3, 2, 1, bias=True).switch_to_deploy()
        other.load_state_dict(torch.load(tmp_path / 'conv.pth'))
        assert_close_rel(other(x), ref)
    with pytest.raises(ValueError, match='already switched to deploy'):
        DeployedCompConv(conv)


def test_model_switch_keeps_a_compconv_switched_on_its_own():
    m = trained_like(nn.Sequential(CompConv(16, 16, 3, padding=1), nn.BatchNorm2d(16)))
    x = torch.randn(1, 16, 6, 6)
    with torch.no_grad():
        ref = m(x)
        m[0].switch_to_deploy()
        switch_to_deploy(m)
        assert isinstance(m[0], CompConv) and isinstance(m[1], nn.BatchNorm2d)
        assert_close_rel(m(x), ref)


def test_switch_to_deploy_errors():
    with pytest.raises(TypeError, match='DeployedCompConv'):
        switch_to_deploy(CompConv(8, 8, 1))
    for bad in (-0.1, 1.0, True, '0.2'):
        with pytest.raises(ValueError, match=f'collapse_above must be None or a fraction in '
                           rf'\[0, 1\), got {bad!r}'):
            switch_to_deploy(nn.Sequential(CompConv(8, 8, 1)), collapse_above=bad)
    with pytest.raises(ValueError, match=r'cannot fold BatchNorm2d\(8, .*\) into CompConv with '
                       r'out_channels=16: only a BatchNorm .* and 16 features'):
        DeployedCompConv(CompConv(8, 16, 1), nn.BatchNorm2d(8))


@pytest.mark.parametrize('layers,collapse', [(None, None), (None, 0.15), (('conv2', ), 0.15)])
def test_backbone_deploy_and_checkpoint(tmp_path, layers, collapse):
    from mmdet.registry import MODELS
    cfg = dict(type='CompConvResNet', depth=50, base_channels=16, compconv_layers=layers,
               compconv_cfg=dict(type='CompConv', c0=16), out_indices=(0, 1, 2, 3))
    model = trained_like(MODELS.build(cfg))
    x = torch.randn(1, 3, 67, 61)
    with torch.no_grad():
        ref = model(x)
        deployed = switch_to_deploy(copy.deepcopy(model), collapse_above=collapse)
        n_dense = sum(type(m) is nn.Conv2d and m.kernel_size == (1, 1) and m.bias is not None
                      for m in deployed.modules())
        assert (n_dense > 0) == (collapse is not None and layers is None)
        for a, b in zip(deployed(x), ref):
            assert_close_rel(a, b, 1e-4)
        # the deployed weights save and load into another deployed copy
        save_checkpoint(deployed.state_dict(), str(tmp_path / 'deployed.pth'))
        other = switch_to_deploy(trained_like(MODELS.build(cfg), seed=1),
                                 collapse_above=collapse)
        load_checkpoint(other, str(tmp_path / 'deployed.pth'), strict=True)
        for a, b in zip(other(x), ref):
            assert_close_rel(a, b, 1e-4)


def test_collapse_above_picks_the_1x1_compconvs_that_save_too_little():
    """CompConv128-R50, all block convs: which 1x1 layers the default 0.15 collapses."""
    from mmdet.registry import MODELS
    model = MODELS.build(dict(type='CompConvResNet', depth=50, compconv_layers=None)).eval()
    ratios = {n: m.plan.macs_per_pixel(1) / (m.in_channels * m.out_channels)
              for n, m in model.named_modules() if isinstance(m, CompConv) and
              m.kernel_size == (1, 1)}
    assert round(ratios['layer1.1.conv1'], 3) == 0.203  # 256 -> 64, d=2, C_p=11
    assert round(ratios['layer2.1.conv1'], 3) == 0.109  # 512 -> 128, d=3, C_p=10
    switch_to_deploy(model)
    collapsed = {n for n, m in model.named_modules() if type(m) is nn.Conv2d and 'layer' in n and
                 n.rsplit('.', 1)[-1].startswith('conv')}
    expected = {n for n, r in ratios.items() if r > 0.15}
    assert collapsed == expected
    assert {n.rsplit('.', 1)[-1] for n in collapsed if not n.startswith(('layer1', 'layer2.0'))
            } == {'conv3'}
    assert len(collapsed) == 16 + 3 + 1  # every conv3, layer1's conv1s, layer2.0.conv1


def test_backbone_switch_to_deploy_method():
    from mmdet.registry import MODELS
    model = trained_like(MODELS.build(dict(type='CompConvResNet', depth=18, base_channels=16)))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
        assert model.switch_to_deploy() is model
        assert not any(isinstance(m, CompConv) for m in model.modules())
        for a, b in zip(model(x), ref):
            assert_close_rel(a, b, 1e-4)


def tiny_faster_rcnn() -> nn.Module:
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    import mmdet
    import os
    register_all_modules()
    base = os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'configs', '_base_', 'models',
                        'faster-rcnn_r50_fpn.py')
    model = Config.fromfile(base).model
    model.backbone = dict(type='CompConvResNet', depth=18, base_channels=16, init_cfg=None,
                          compconv_cfg=dict(type='CompConv', c0=16), norm_eval=False)
    model.neck.update(type='CompConvFPN', in_channels=[16, 32, 64, 128], out_channels=32)
    model.rpn_head.update(type='CompConvRPNHead', in_channels=32, feat_channels=32,
                          compconv_cfg=dict(type='CompConv', c0=16))
    model.roi_head.bbox_roi_extractor.out_channels = 32
    model.roi_head.bbox_head.update(in_channels=32, fc_out_channels=64)
    model.test_cfg.rcnn.update(score_thr=0.0, max_per_img=20)  # a random model scores low
    return trained_like(MODELS.build(model))


def test_whole_detector_deploy_is_equivalent():
    from mmdet.structures import DetDataSample
    torch.manual_seed(0)
    model = tiny_faster_rcnn()
    x = torch.rand(1, 3, 96, 128)
    meta = dict(img_shape=(96, 128), ori_shape=(96, 128), pad_shape=(96, 128),
                batch_input_shape=(96, 128), scale_factor=(1.0, 1.0))
    samples = [DetDataSample(metainfo=meta)]
    with torch.no_grad():
        feats = model.extract_feat(x)
        rpn = model.rpn_head(feats)
        proposals = model.rpn_head.predict(feats, samples, rescale=False)
        roi = model.roi_head.forward(feats, proposals)
        ref = model.predict(x, copy.deepcopy(samples))[0].pred_instances
        switch_to_deploy(model)
        assert not any(isinstance(m, CompConv) for m in model.modules())
        deployed_feats = model.extract_feat(x)
        for a, b in zip(deployed_feats, feats):
            assert_close_rel(a, b, 1e-4)
        for level_a, level_b in zip(model.rpn_head(deployed_feats), rpn):
            for a, b in zip(level_a, level_b):
                assert_close_rel(a, b, 1e-4)
        # the box head on the same proposals; final boxes of an untrained model are near-ties
        # that tiny float differences may reorder, so they are compared only in number
        for a, b in zip(model.roi_head.forward(deployed_feats, proposals), roi):
            assert_close_rel(a, b, 1e-4)
        out = model.predict(x, copy.deepcopy(samples))[0].pred_instances
    assert len(out) == len(ref) > 0


def test_switch_to_deploy_folds_only_in_known_structures():
    class Custom(nn.Module):  # registers the BN after the conv, but applies it first
        def __init__(self):
            super().__init__()
            self.conv = CompConv(8, 8, 3, padding=1)
            self.bn = nn.BatchNorm2d(8)

        def forward(self, x):
            return self.conv(self.bn(x))

    m = deploys_equivalently(trained_like(Custom()), torch.randn(1, 8, 5, 5))
    assert isinstance(m.bn, nn.BatchNorm2d)


# Issue 12.3: only an eval-foldable BatchNorm is folded; anything else is a clear refusal.
@pytest.mark.parametrize('norm', [nn.BatchNorm2d(64, track_running_stats=False),
                                  nn.GroupNorm(4, 64), nn.InstanceNorm2d(64)],
                         ids=['bn-no-stats', 'gn', 'in'])
def test_collapse_and_deploy_refuse_norms_that_do_not_fold(norm):
    conv = CompConv(64, 64, 1)
    for build in (collapse_pointwise, DeployedCompConv):
        with pytest.raises(ValueError, match=r'cannot fold .* only a BatchNorm with running '
                           r'statistics \(track_running_stats=True\) and 64 features'):
            build(conv, norm.eval())


def test_switch_to_deploy_leaves_a_bn_without_running_stats():
    m = trained_like(nn.Sequential(CompConv(16, 16, 3, padding=1), nn.BatchNorm2d(16)))
    m[1] = nn.BatchNorm2d(16, track_running_stats=False).eval()
    deploys_equivalently(m, torch.randn(2, 16, 5, 5))
    assert isinstance(m[0], DeployedCompConv) and isinstance(m[1], nn.BatchNorm2d)


# Issue 12.9: switch_to_deploy is for inference: a model in train mode is put in eval mode.
def test_switch_to_deploy_puts_a_training_model_in_eval_mode():
    m = trained_like(ConvModule(16, 16, 3, padding=1, conv_cfg=dict(type='CompConv'),
                                norm_cfg=dict(type='BN')))
    x = torch.randn(2, 16, 5, 5)
    with torch.no_grad():
        y = m(x)  # eval
        m.train()
        with pytest.warns(UserWarning, match='ConvModule was in train mode; .* eval mode'):
            switch_to_deploy(m)
        assert not any(mod.training for mod in m.modules())
        assert_close_rel(m(x), y)


# Issue 12.4: unbatched (C, H, W) input, as nn.Conv2d takes it.
def test_deployed_compconv_takes_unbatched_input():
    conv = trained_like(nn.Sequential(CompConv(64, 64, 3, padding=1, shuffle=False)))[0]
    deployed = DeployedCompConv(conv)
    x = torch.randn(64, 8, 8)
    with torch.no_grad():
        assert_close_rel(deployed(x), conv(x[None])[0])
    with pytest.raises(ValueError, match=r'DeployedCompConv takes a \(N, C, H, W\) or '
                       r'\(C, H, W\) input, got shape \(8, 8\)'):
        deployed(torch.randn(8, 8))


# Issue 12.11: what mmcv's fuse_conv_bn does with a CompConv, as the docs say it.
def test_mmcv_fuse_conv_bn_and_compconv_as_documented():
    from pathlib import Path
    from mmcv.cnn import fuse_conv_bn

    def model():
        return trained_like(nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                                          CompConv(16, 16, 3, padding=1), nn.BatchNorm2d(16)))

    x = torch.randn(1, 8, 6, 6)
    with torch.no_grad():
        ref = model()
        y = ref(x)
        wrong = fuse_conv_bn(copy.deepcopy(ref))  # folds the BN into the plain conv
        assert isinstance(wrong[0], nn.Conv2d) and isinstance(wrong[3], nn.Identity)
        assert (wrong(x) - y).abs().max() > 0.1
        right = fuse_conv_bn(switch_to_deploy(copy.deepcopy(ref)))
        assert_close_rel(right(x), y)
    root = Path(__file__).parents[1]  # the operator's README section is docs/operator.md now
    readme = (root / 'README.md').read_text() + (root / 'docs' / 'operator.md').read_text()
    assert 'cannot fold it wrongly' not in readme
    assert 'Sequential(Conv2d, ReLU, CompConv, BN)' in readme
