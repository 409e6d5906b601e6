"""Every config of configs/distill parses, builds (teacher checkpoint not loaded: the COCO ones
name torchvision:// and model-zoo URLs, unreachable here) and runs one loss step of each phase
on two 64x64 images."""
import re
from pathlib import Path

import pytest
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.logging import MessageHub

from conftest import assert_readme_explains

from mmdet_compconv import CompConv

CONFIG_DIR = Path(__file__).resolve().parents[1] / 'configs' / 'distill'
CONFIGS = sorted(CONFIG_DIR.glob('*.py'))
ZOO = 'https://download.openmmlab.com/mmdetection/v2.0/'
SHAPES = CONFIG_DIR.parent / 'shapes'
# the backbone-only flows on shapes: pretraining on one task -> CompConv backbone distilled from
# the target task's unlabeled images -> the target detector initialised from it (and its
# vanilla control): (pretraining config, distill config, {detector: its from-scratch twin})
FLOWS = [
    (SHAPES / 'faster-rcnn_r18_fpn_shapes-other.py',
     CONFIG_DIR / 'compconv128-r18_distill-r18-shapes-other_shapes-images.py',
     {CONFIG_DIR / 'faster-rcnn_compconv128-r18-distill-shapes-other_fpn_shapes.py':
         SHAPES / 'faster-rcnn_compconv128-r18_fpn_shapes.py',
      CONFIG_DIR / 'faster-rcnn_r18-shapes-other_fpn_shapes.py':
         SHAPES / 'faster-rcnn_r18_fpn_shapes.py'}),
    (SHAPES / 'faster-rcnn_r18_fpn_24e_shapes.py',
     CONFIG_DIR / 'compconv128-r18_distill-r18-shapes_shapes-other-images.py',
     {CONFIG_DIR / 'faster-rcnn_compconv128-r18-distill-shapes_fpn_shapes-other.py':
         SHAPES / 'faster-rcnn_compconv128-r18_fpn_shapes-other.py',
      CONFIG_DIR / 'faster-rcnn_r18-shapes_fpn_shapes-other.py':
         SHAPES / 'faster-rcnn_r18_fpn_shapes-other.py'}),
    (SHAPES / 'faster-rcnn_r18_fpn_shapes-other.py',
     CONFIG_DIR / 'compconv128-r18_distill-r18-shapes-other_shapes-textured-images.py',
     {CONFIG_DIR / 'faster-rcnn_compconv128-r18-distill-shapes-other_fpn_shapes-textured.py':
         SHAPES / 'faster-rcnn_compconv128-r18_fpn_shapes-textured.py',
      CONFIG_DIR / 'faster-rcnn_r18-shapes-other_fpn_shapes-textured.py':
         SHAPES / 'faster-rcnn_r18_fpn_shapes-textured.py'}),
]
BACKBONE_FLOW = {k: v for _, _, detectors in FLOWS for k, v in detectors.items()}


pytestmark = pytest.mark.usefixtures('mmdet_scope_one_thread')  # tests/conftest.py


def test_readme_explains_every_config():
    assert_readme_explains((CONFIG_DIR / 'README.md').read_text(), CONFIGS,
                           'configs/distill/README.md')


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_distill_config_builds_and_runs_both_phases(path):
    cfg = Config.fromfile(str(path))
    if path in BACKBONE_FLOW:  # detectors initialised from a backbone checkpoint: below
        return
    assert cfg.model.type == 'CompConvDistiller' or re.search(r'[-_]ft-\d+e_', path.name)
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
        distills = not fine_tune or cfg.model.get('neck_loss_weight') or \
            cfg.model.get('stage_loss_weight')  # else a plain fine-tune in distiller form
        assert any(k.startswith(prefix) for k in losses) == bool(distills), sorted(losses)
        if fine_tune:
            assert 'loss_bbox' in losses or 'loss_rpn_bbox' in losses
    hub.update_info('iter', 0)
    assert detector != path.name.startswith('compconv128-')  # backbone-only configs


@pytest.mark.parametrize('pretrain,distill_path,detectors', FLOWS,
                         ids=lambda v: v.stem if isinstance(v, Path) else '')
def test_backbone_flow_configs_chain_and_differ_from_the_twins_only_in_init(
        pretrain, distill_path, detectors):
    """Each config of a backbone-only flow reads what the previous one writes, the distillation
    reads the target task's images, and the two detectors are the target task's twins (same
    schedule, data, seed) with a pretrained backbone."""
    pre = Config.fromfile(str(pretrain))
    pretrain_ckpt = f'work_dirs/{pretrain.stem}/epoch_{pre.train_cfg.max_epochs}.pth'
    distill = Config.fromfile(str(distill_path))
    assert distill.model.teacher_ckpt == pretrain_ckpt
    teacher = {k: v for k, v in distill.model.teacher.items() if k != 'type'}
    assert {k: pre.model.backbone[k] for k in teacher} == teacher
    student_ckpt = f'work_dirs/{distill_path.stem}/iter_{distill.train_cfg.max_iters}.pth'
    for path, twin in detectors.items():
        a, b = Config.fromfile(str(path)), Config.fromfile(str(twin))
        assert distill.train_dataloader.dataset.data_root == \
            a.train_dataloader.dataset.data_root  # distilled on the target task's images
        assert a.train_dataloader.dataset.data_root != pre.train_dataloader.dataset.data_root
        init = a.model.backbone.pop('init_cfg')
        assert b.model.backbone.pop('init_cfg') is None
        assert a.model == b.model
        for key in ('train_cfg', 'param_scheduler', 'optim_wrapper', 'train_dataloader',
                    'randomness', 'load_from'):
            assert a.get(key) == b.get(key), key
        if 'compconv' in path.name:
            assert init == dict(type='Pretrained', checkpoint=student_ckpt)
        else:
            assert init == dict(type='Pretrained', prefix='backbone.', checkpoint=pretrain_ckpt)
