"""Every config of configs/compconv: it parses, builds, and runs one loss and one predict step.

The models are the real COCO-sized ones (ResNet-50/101, 256-channel FPN, 80 classes) on
two 64x64 images, so each step takes about a second on one CPU thread.
"""
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.registry import DefaultScope

from conftest import assert_readme_explains

from mmdet_compconv import CompConv
import mmdet_compconv  # noqa: F401  (safe checkpoint loading)

CONFIG_DIR = Path(__file__).resolve().parents[1] / 'configs' / 'compconv'
CONFIGS = sorted(CONFIG_DIR.glob('*.py'))
REQUIRED = [
    'faster-rcnn_compconv128-r50_fpn_1x_coco.py',
    'faster-rcnn_compconv128-r101_fpn_1x_coco.py',
    'faster-rcnn_compconv128-r50_fpn_2x_coco.py',
    'faster-rcnn_compconv128-3x3-r50_fpn_1x_coco.py',
    'faster-rcnn_compconv128-r50_compconv128-fpn_1x_coco.py',
    'faster-rcnn_compconv128-r50-scratch_fpn_gn-all_6x_coco.py',
    'retinanet_compconv128-r50_fpn_1x_coco.py',
    'retinanet_compconv128-r101_fpn_1x_coco.py',
    'retinanet_compconv128-r50-scratch_fpn_gn-all_6x_coco.py',
]
PRETRAINED = [c for c in CONFIGS if 'scratch' not in c.name]
SCRATCH = [c for c in CONFIGS if 'scratch' in c.name]


@pytest.fixture(scope='module', autouse=True)
def mmdet_scope_one_thread():
    """mmdet's default scope and one torch thread, both restored afterwards."""
    register_all_modules(init_default_scope=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # shared CPUs: many threads on tiny tensors only wait
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield
    torch.set_num_threads(threads)


def build(cfg: Config) -> nn.Module:
    return MODELS.build(cfg.model)


def test_required_configs_exist():
    assert set(REQUIRED) <= {c.name for c in CONFIGS}


def test_readme_explains_every_config():
    assert_readme_explains((CONFIG_DIR / 'README.md').read_text(), CONFIGS,
                           'configs/compconv/README.md')


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_config_builds_and_runs_a_step(path):
    cfg = Config.fromfile(str(path))
    assert 'mmdet_compconv' in cfg.custom_imports['imports']
    assert cfg.default_scope == 'mmdet'
    backbone = cfg.model.backbone
    assert backbone.type == 'CompConvResNet' and backbone.compconv_cfg.c0 == 128
    init = backbone.init_cfg
    if 'scratch' in path.name:
        assert init is None
    else:  # never torchvision:// weights: they do not fit CompConv layers
        assert init.type == 'Pretrained' and init.checkpoint.startswith('checkpoints/compconv128-')

    model = build(cfg)
    assert any(isinstance(m, CompConv) for m in model.backbone.modules())
    model.train()
    data = model.data_preprocessor(
        demo_mm_inputs(2, [[3, 64, 64]] * 2, num_classes=80, num_items=[2, 3]), True)
    losses = model(**data, mode='loss')
    total, _ = model.parse_losses(losses)
    assert math.isfinite(total.item()) and total.item() > 0
    total.backward()
    assert model.backbone.layer3[0].conv2.convs[0].weight.grad is not None

    model.eval()
    data = model.data_preprocessor(demo_mm_inputs(1, [[3, 64, 64]], num_classes=80), False)
    with torch.no_grad():
        (result, ) = model(**data, mode='predict')
    assert result.pred_instances.bboxes.shape[1] == 4
    assert len(result.pred_instances.scores) == len(result.pred_instances.labels)


@pytest.mark.parametrize('path', PRETRAINED, ids=lambda p: p.stem)
def test_missing_pretrained_backbone_is_a_clear_error(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the configs' checkpoints/... paths are relative to the cwd
    cfg = Config.fromfile(str(path))
    model = build(cfg)
    with pytest.raises(FileNotFoundError, match=r'checkpoints/compconv128-.*_imagenet\.pth can not '
                       r'be found'):
        model.init_weights()


@pytest.mark.parametrize('name', [
    'faster-rcnn_compconv128-r50_fpn_1x_coco.py',
    'faster-rcnn_compconv128-3x3-r50_fpn_1x_coco.py',
])
def test_pretrained_backbone_is_loaded(name, tmp_path, monkeypatch):
    """A backbone checkpoint at the documented path ends up, exactly, in the detector."""
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile(str(CONFIG_DIR / name))
    model = build(cfg)
    torch.manual_seed(0)
    weights = {k: torch.randn_like(v) if v.is_floating_point() else v
               for k, v in model.backbone.state_dict().items()}
    target = tmp_path / cfg.model.backbone.init_cfg.checkpoint
    target.parent.mkdir(parents=True)
    torch.save({'state_dict': weights}, target)
    model.init_weights()
    for key, value in model.backbone.state_dict().items():
        torch.testing.assert_close(value, weights[key], msg=key)


def test_variants_replace_what_their_names_say():
    def load(name):
        return build(Config.fromfile(str(CONFIG_DIR / name)))

    all_convs = load('faster-rcnn_compconv128-r50_fpn_1x_coco.py')
    block = all_convs.backbone.layer3[1]
    assert all(isinstance(getattr(block, n), CompConv) for n in ('conv1', 'conv2', 'conv3'))
    assert type(all_convs.backbone.conv1) is nn.Conv2d  # stem
    assert type(all_convs.backbone.layer3[0].downsample[0]) is nn.Conv2d  # shortcut

    only_3x3 = load('faster-rcnn_compconv128-3x3-r50_fpn_1x_coco.py').backbone.layer3[1]
    assert isinstance(only_3x3.conv2, CompConv)
    assert type(only_3x3.conv1) is nn.Conv2d and type(only_3x3.conv3) is nn.Conv2d

    neck_too = load('faster-rcnn_compconv128-r50_compconv128-fpn_1x_coco.py')
    assert type(neck_too.neck).__name__ == 'CompConvFPN'
    assert isinstance(neck_too.neck.lateral_convs[0].conv, CompConv)
    assert isinstance(neck_too.neck.fpn_convs[0].conv, CompConv)
    assert type(neck_too.rpn_head).__name__ == 'CompConvRPNHead'
    assert isinstance(neck_too.rpn_head.rpn_conv, CompConv)

    r101 = Config.fromfile(str(CONFIG_DIR / 'retinanet_compconv128-r101_fpn_1x_coco.py'))
    assert r101.model.backbone.depth == 101
    assert r101.model.backbone.init_cfg.checkpoint == 'checkpoints/compconv128-r101_imagenet.pth'


def test_2x_config_has_the_2x_schedule():
    cfg = Config.fromfile(str(CONFIG_DIR / 'faster-rcnn_compconv128-r50_fpn_2x_coco.py'))
    assert cfg.train_cfg.max_epochs == 24
    assert cfg.param_scheduler[1].milestones == [16, 22]


@pytest.mark.parametrize('path', SCRATCH, ids=lambda p: p.stem)
def test_scratch_configs_follow_mmdet_scratch(path):
    cfg = Config.fromfile(str(path))
    backbone = cfg.model.backbone
    assert backbone.frozen_stages == -1 and backbone.norm_eval is False
    assert backbone.norm_cfg.type == 'GN' and cfg.model.neck.norm_cfg.type == 'GN'
    assert cfg.optim_wrapper.paramwise_cfg.norm_decay_mult == 0
    assert cfg.train_cfg.max_epochs == 73
    model = build(cfg)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
