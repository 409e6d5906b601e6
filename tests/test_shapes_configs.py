"""Every config of configs/shapes: it builds with the plugin and runs one loss and one predict
step on two tiny images on the CPU; CompConv twins differ from their vanilla twins only in
the backbone convolutions."""
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.config import Config

from mmdet_compconv import CompConv
from mmdet_compconv.datasets.shapes import CLASSES, OTHER_CLASSES

CONFIG_DIR = Path(__file__).resolve().parents[1] / 'configs' / 'shapes'
CONFIGS = sorted(CONFIG_DIR.glob('*.py'))
TWINS = [(c, CONFIG_DIR / c.name.replace('compconv128-', '')) for c in CONFIGS
         if 'compconv128-' in c.name]


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    register_all_modules()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_the_four_configs_exist():
    names = {c.name for c in CONFIGS}
    assert {'faster-rcnn_r18_fpn_shapes.py', 'faster-rcnn_compconv128-r18_fpn_shapes.py',
            'retinanet_r18_fpn_shapes.py', 'retinanet_compconv128-r18_fpn_shapes.py'} <= names
    assert all(vanilla.is_file() for _, vanilla in TWINS)


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_config_trains_from_scratch_offline(path):
    cfg = Config.fromfile(str(path))
    assert 'mmdet_compconv' in cfg.custom_imports['imports']
    backbone = cfg.model.backbone
    assert backbone.init_cfg is None  # no torchvision:// download, no partial checkpoint load
    assert backbone.frozen_stages == -1 and backbone.norm_eval is False
    # shapes-other: the different task (other seed, disjoint classes) of the backbone-only
    # distillation flow's pretraining
    # shapes-textured: the shapes classes on images of other statistics (a held-out target)
    other = 'shapes-other' in path.name
    root, classes = ('data/shapes-other/', OTHER_CLASSES) if other else ('data/shapes/', CLASSES)
    if 'shapes-textured' in path.name:
        root = 'data/shapes-textured/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.metainfo['classes'] == classes
        assert cfg[loader].dataset.data_root == root
    for evaluator in ('val_evaluator', 'test_evaluator'):
        assert cfg[evaluator].ann_file == root + 'annotations/instances_val.json'
    head = cfg.model.get('roi_head', cfg.model).get('bbox_head')
    assert head.num_classes == len(classes)


@pytest.mark.parametrize('compconv,vanilla', TWINS, ids=lambda p: p.stem)
def test_twins_differ_only_in_the_backbone(compconv, vanilla):
    a, b = Config.fromfile(str(compconv)), Config.fromfile(str(vanilla))
    for key in ('train_cfg', 'param_scheduler', 'optim_wrapper', 'train_dataloader',
                'val_evaluator'):
        assert a[key] == b[key], key
    model_a, model_b = a.model.to_dict(), b.model.to_dict()
    bb_a, bb_b = model_a.pop('backbone'), model_b.pop('backbone')
    assert model_a == model_b
    assert bb_a.pop('type') == 'CompConvResNet' and bb_b.pop('type') == 'ResNet'
    assert bb_a.pop('compconv_cfg') == dict(type='CompConv', c0=128)
    bb_a.pop('compconv_layers')
    assert bb_a == bb_b


def _step(model: nn.Module) -> None:
    packed = demo_mm_inputs(2, [[3, 64, 64], [3, 64, 48]], num_classes=len(CLASSES))
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    total = sum(v if torch.is_tensor(v) else sum(v) for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.backbone.parameters())
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(packed, False), mode='predict')
    assert len(results) == 2
    for r in results:
        assert r.pred_instances.bboxes.shape[1] == 4
        assert len(r.pred_instances.labels) == len(r.pred_instances.scores)


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_loss_and_predict(path):
    cfg = Config.fromfile(str(path))
    model = MODELS.build(cfg.model)
    model.init_weights()
    compconvs = [m for m in model.backbone.modules() if isinstance(m, CompConv)]
    if 'compconv128-' in path.name:
        # ResNet-18 has 16 block convs; all are CompConvs, the stem and shortcuts are not
        assert len(compconvs) == 16
        assert all(m.c0 == 128 for m in compconvs)
        assert not isinstance(model.backbone.conv1, CompConv)
    else:
        assert not compconvs
    _step(model)


def _demo_summary():
    import importlib.util
    path = CONFIG_DIR.parents[1] / 'tools' / 'demo_summary.py'
    spec = importlib.util.spec_from_file_location('demo_summary', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_summary_complexity_and_metrics(tmp_path):
    """The summary's MACs and params: CompConv128-R18 is lighter than ResNet-18, and the
    backbone MACs equal the analytic count of its convolutions."""
    import json
    from mmdet_compconv.cnn import conv_macs
    summary = _demo_summary()
    cc = summary.complexity(str(CONFIG_DIR / 'faster-rcnn_compconv128-r18_fpn_shapes.py'), 64)
    van = summary.complexity(str(CONFIG_DIR / 'faster-rcnn_r18_fpn_shapes.py'), 64)
    assert cc['backbone_params'] < 0.3 * van['backbone_params']
    assert cc['backbone_macs'] < 0.5 * van['backbone_macs']
    assert cc['features_macs'] - cc['backbone_macs'] == van['features_macs'] - van['backbone_macs']

    cfg = Config.fromfile(str(CONFIG_DIR / 'faster-rcnn_compconv128-r18_fpn_shapes.py'))
    backbone = MODELS.build(cfg.model).backbone.eval()
    sizes = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: sizes.__setitem__(n, o.shape[-2:]))
             for n, m in backbone.named_modules() if isinstance(m, (CompConv, nn.Conv2d))
             and not any(n.startswith(c + '.') for c, cm in backbone.named_modules()
                         if isinstance(cm, CompConv) and c)]
    with torch.no_grad():
        backbone(torch.rand(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    modules = dict(backbone.named_modules())
    analytic = sum(conv_macs(modules[n], s) for n, s in sizes.items())
    # FlopCounterMode also counts nothing else in a ResNet's convs; BN/ReLU/pool are not MACs
    assert cc['backbone_macs'] == analytic

    run = tmp_path / '20260101_000000'
    run.mkdir()
    (run / '20260101_000000.json').write_text(json.dumps({'coco/bbox_mAP': 0.612,
                                                          'coco/bbox_mAP_50': 0.9}))
    metrics, _ = summary.read_metrics(str(tmp_path))
    text = summary.format_summary(metrics, cc, van, 'a.py', 'b.py', 64, {'train': 1.0}, 60.0,
                                  'vis', 3)
    assert 'bbox mAP        0.612' in text and 'CompConv / vanilla' in text
    with pytest.raises(FileNotFoundError):
        summary.read_metrics(str(tmp_path / 'nothing'))
