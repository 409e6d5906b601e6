"""Every config of configs/distill parses, builds (teacher checkpoint not loaded: the COCO ones
name torchvision:// and model-zoo URLs, unreachable here) and runs one loss step of each phase
on two 64x64 images."""
from pathlib import Path

import pytest
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.logging import MessageHub

from mmdet_compconv import CompConv

CONFIG_DIR = Path(__file__).resolve().parents[1] / 'configs' / 'distill'
CONFIGS = sorted(CONFIG_DIR.glob('*.py'))
ZOO = 'https://download.openmmlab.com/mmdetection/v2.0/'


pytestmark = pytest.mark.usefixtures('mmdet_scope_one_thread')  # tests/conftest.py


def test_readme_mentions_every_config():
    readme = (CONFIG_DIR / 'README.md').read_text()
    assert not [c.name for c in CONFIGS if c.name not in readme]


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_distill_config_builds_and_runs_both_phases(path):
    cfg = Config.fromfile(str(path))
    assert cfg.model.type == 'CompConvDistiller' or 'ft-4e' in path.name
    if cfg.model.type != 'CompConvDistiller':  # the vanilla control of the shapes fine-tune
        assert cfg.load_from.startswith('work_dirs/') and cfg.load_from.endswith('.pth')
        return
    ckpt = cfg.model.teacher_ckpt
    if 'coco' in path.name:
        assert ckpt.startswith(('torchvision://resnet', ZOO))
    else:
        assert ckpt.startswith('work_dirs/') and ckpt.endswith('.pth')
    fine_tune = cfg.model.get('task_loss_weight', 0) > 0
    if fine_tune:
        assert cfg.load_from.startswith('work_dirs/') and cfg.train_dataloader.dataset.type != \
            'UnlabeledImageDataset'
    else:
        assert cfg.train_dataloader.dataset.type == 'UnlabeledImageDataset'
        assert cfg.train_cfg.max_iters > cfg.model.blockwise_iters > 0

    cfg.model.teacher_ckpt = None
    model = MODELS.build(cfg.model)
    assert not any(isinstance(m, CompConv) for m in model.teacher.modules())
    assert any(isinstance(m, CompConv) for m in model.student.modules())
    model.train()
    detector = hasattr(model.student, 'backbone')
    num_classes = getattr(getattr(model.student, 'roi_head', None), 'bbox_head', None)
    num_classes = (num_classes or getattr(model.student, 'bbox_head', None))
    num_classes = getattr(num_classes, 'num_classes', 80)
    data = model.data_preprocessor(
        demo_mm_inputs(2, [[3, 64, 64]] * 2, num_classes=num_classes, num_items=[2, 3]), True)
    hub = MessageHub.get_current_instance()
    for it in ([0, 10**9] if cfg.model.blockwise_iters else [0]):
        hub.update_info('iter', it)
        losses = model(**data, mode='loss')
        prefix = 'loss_block_' if it < cfg.model.blockwise_iters else 'loss_distill_'
        assert any(k.startswith(prefix) for k in losses), sorted(losses)
        if fine_tune:
            assert 'loss_bbox' in losses or 'loss_rpn_bbox' in losses
    hub.update_info('iter', 0)
    assert detector != path.name.startswith('compconv128-')  # backbone-only configs
