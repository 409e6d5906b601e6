"""tools/*.py and tools/dist_*.sh run mmdet's own scripts with the plugin, end to end.

A tiny COCO-format dataset (4 images of 64x64, 2 classes) and a tiny RetinaNet (CompConv
ResNet-18 at 1/4 width, a 32-channel FPN) keep each run to a few seconds on one CPU thread.
The tiny config inherits configs/compconv/retinanet_compconv128-r50_fpn_1x_coco.py and starts,
as that config does, from a CompConv backbone checkpoint given through ``init_cfg``.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmdet.utils import register_all_modules
from mmengine.registry import DefaultScope

from mmdet_compconv.checkpoint import safe_load
from mmdet_compconv.apis.mmdet_tools import cpu_distributed_args, mmdet_tool_path

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / 'configs' / 'compconv' / 'retinanet_compconv128-r50_fpn_1x_coco.py'
# One thread per process (the CPUs are shared) and no GPU: these are CPU tests everywhere.
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES='')
TINY_CONFIG = '''
_base_ = {base!r}
data_root = {root!r}
metainfo = dict(classes=('box', 'disc'))
model = dict(
    backbone=dict(depth=18, base_channels=16, frozen_stages=-1, norm_eval=False,
                  compconv_cfg=dict(type='CompConv', c0=16),
                  init_cfg=dict(type='Pretrained', checkpoint={pretrained!r})),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    bbox_head=dict(num_classes=2, in_channels=32, feat_channels=32, stacked_convs=1),
    test_cfg=dict(score_thr=0.0, max_per_img=10))
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
dataset = dict(data_root=data_root, metainfo=metainfo, ann_file='ann.json',
               data_prefix=dict(img='images/'), pipeline=pipeline)
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(dataset, filter_cfg=dict(filter_empty_gt=True, min_size=0)))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                      dataset=dict(dataset, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'ann.json')
test_evaluator = val_evaluator
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=2, val_begin=1000)
param_scheduler = []
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2), logger=dict(interval=1))
log_processor = dict(by_epoch=False)
'''


def make_tiny_coco(root: Path) -> None:
    """4 images with one filled rectangle (class 1) or disc (class 2) each."""
    (root / 'images').mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(4):
        img = np.full((64, 64, 3), 40, np.uint8)
        x, y = (int(v) for v in rng.integers(4, 24, 2))
        w, h = (int(v) for v in rng.integers(16, 36, 2))
        label = i % 2
        if label == 0:
            cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), (60, 200, 60), -1)
        else:
            cv2.ellipse(img, (x + w // 2, y + h // 2), (w // 2, h // 2), 0, 0, 360,
                        (200, 60, 60), -1)
        cv2.imwrite(str(root / 'images' / f'{i}.png'), img)
        images.append(dict(id=i, file_name=f'{i}.png', width=64, height=64))
        annotations.append(dict(id=i, image_id=i, category_id=label + 1, bbox=[x, y, w, h],
                                area=w * h, iscrowd=0))
    categories = [dict(id=1, name='box'), dict(id=2, name='disc')]
    (root / 'ann.json').write_text(
        json.dumps(dict(images=images, annotations=annotations, categories=categories)))


@pytest.fixture(scope='module', autouse=True)
def mmdet_scope():
    """mmdet's default scope for the in-process parts, restored afterwards."""
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """(config path, data root) of the tiny setup, with its pretrained backbone file."""
    from mmdet.registry import MODELS
    from mmengine.config import Config

    root = tmp_path_factory.mktemp('tiny')
    make_tiny_coco(root / 'data')
    pretrained = root / 'compconv16-r18-quarter_pretrained.pth'
    config = root / 'tiny_retinanet.py'
    config.write_text(TINY_CONFIG.format(base=str(BASE), root=f'{root}/data/',
                                         pretrained=str(pretrained)))
    backbone = MODELS.build(Config.fromfile(str(config)).model.backbone)
    torch.save({'state_dict': backbone.state_dict()}, pretrained)
    return config, root


def run(*cmd, cwd: Path, timeout: int = 240, **env: str) -> str:
    """Run a command; return its stdout + stderr, failing with them if it fails."""
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=dict(ENV, **env),
                          capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{cmd} exited with {proc.returncode}:\n{out[-6000:]}'
    return out


def tool(name: str, *args, cwd: Path) -> str:
    return run(sys.executable, REPO / 'tools' / f'{name}.py', *args, cwd=cwd)


@pytest.fixture(scope='module')
def trained(tiny):
    """A work dir after 2 iterations of tools/train.py, and its log."""
    config, root = tiny
    work_dir = root / 'train'
    out = tool('train', config, '--work-dir', work_dir, cwd=root)
    return work_dir, out


def test_train_starts_from_the_backbone_checkpoint_and_saves(trained):
    work_dir, out = trained
    # the backbone's report of its init_cfg=Pretrained load: every tensor came from the file
    assert re.search(r'CompConvResNet: loaded (\d+)/\1 parameter tensors', out)
    assert re.search(r'Iter\(train\) \[2/2\].*loss: \d', out)
    assert (work_dir / 'iter_2.pth').is_file()


def test_train_with_missing_pretrained_file_stops_before_training(tiny):
    config, root = tiny
    missing = root / 'checkpoints' / 'compconv128-r50_imagenet.pth'
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'train.py'), str(config), '--work-dir',
         str(root / 'missing'), '--cfg-options', f'model.backbone.init_cfg.checkpoint={missing}'],
        cwd=root, env=ENV, capture_output=True, text=True, timeout=240)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert f'FileNotFoundError: {missing} can not be found' in out
    assert 'Iter(train)' not in out


def test_resume(trained, tmp_path):
    work_dir, _ = trained
    resumed = tmp_path / 'resumed'
    shutil.copytree(work_dir, resumed)
    out = tool('train', resumed / 'tiny_retinanet.py', '--work-dir', resumed, '--resume',
               '--cfg-options', 'train_cfg.max_iters=3', cwd=tmp_path)
    assert 'resumed epoch: 0, iter: 2' in out
    assert 'Iter(train) [3/3]' in out and 'Iter(train) [1/3]' not in out
    assert (resumed / 'iter_3.pth').is_file()


def test_load_from(trained, tmp_path):
    work_dir, _ = trained
    ckpt = work_dir / 'iter_2.pth'
    out = tool('train', work_dir / 'tiny_retinanet.py', '--work-dir', tmp_path,
               '--cfg-options', f'load_from={ckpt}', 'train_cfg.max_iters=1', cwd=tmp_path)
    assert f'Load checkpoint from {ckpt}' in out
    assert 'Iter(train) [1/1]' in out


def test_test_py_with_runner_checkpoint(trained, tmp_path):
    """tools/test.py loads the Runner checkpoint; it never needs the backbone's init file."""
    work_dir, _ = trained
    results = tmp_path / 'results.pkl'
    out = tool('test', work_dir / 'tiny_retinanet.py', work_dir / 'iter_2.pth', '--work-dir',
               tmp_path, '--out', results, '--cfg-options',
               f'model.backbone.init_cfg.checkpoint={tmp_path / "missing.pth"}', cwd=tmp_path)
    assert re.search(r'coco/bbox_mAP: -?\d', out)
    assert results.is_file()


def test_other_mmdet_tools_run_through_the_runner(trained, tmp_path):
    """publish_model.py calls torch.load itself: it still reads a Runner checkpoint."""
    work_dir, _ = trained
    run(sys.executable, '-m', 'mmdet_compconv.apis.mmdet_tools', 'model_converters/publish_model',
        work_dir / 'iter_2.pth', tmp_path / 'published.pth', cwd=tmp_path)
    (published, ) = tmp_path.glob('published-*.pth')
    ckpt = torch.load(published)  # plain weights_only load: only meta and state_dict are left
    assert set(ckpt) == {'meta', 'state_dict'}
    trained_state = safe_load(str(work_dir / 'iter_2.pth'))['state_dict']
    assert ckpt['state_dict'].keys() == trained_state.keys()
    assert all(torch.equal(v, trained_state[k]) for k, v in ckpt['state_dict'].items())


def test_apis_with_runner_checkpoint(tiny, trained, tmp_path):
    from mmdet.apis import DetInferencer, inference_detector, init_detector

    _, root = tiny
    work_dir, _ = trained
    ckpt = str(work_dir / 'iter_2.pth')
    image = str(root / 'data' / 'images' / '0.png')
    # The trained detector is all they need: the backbone's init file may be gone.
    config = tmp_path / 'no_pretrained_file.py'
    config.write_text(f"_base_ = {str(work_dir / 'tiny_retinanet.py')!r}\n"
                      "model = dict(backbone=dict(init_cfg=dict(checkpoint='/missing.pth')))\n")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = init_detector(str(config), ckpt, device='cpu')
        assert type(model.backbone).__name__ == 'CompConvResNet'
        assert model.dataset_meta['classes'] == ('box', 'disc')
        result = inference_detector(model, image)
        assert result.pred_instances.bboxes.shape == (10, 4)

        inferencer = DetInferencer(model=str(config), weights=ckpt, device='cpu',
                                   show_progress=False)
        out = inferencer(image, out_dir=str(tmp_path / 'out'), no_save_pred=False)
    finally:
        torch.set_num_threads(threads)
    assert len(out['predictions'][0]['bboxes']) == 10
    assert (tmp_path / 'out' / 'vis' / '0.png').is_file()
    assert (tmp_path / 'out' / 'preds' / '0.json').is_file()


def test_get_flops(tiny):
    """mmdet's get_flops.py (mmengine's FlopAnalyzer, which also counts norms and upsampling)
    against this package's conv MAC count (torch's FlopCounterMode / 2) of the same model and
    input: the same convolutions, so its figure is ours plus the few norm and resize FLOPs."""
    from mmdet_compconv.apis import init_model
    from mmdet_compconv.cnn import count_macs
    from mmdet_compconv.models import DenseDetector
    config, root = tiny
    out = tool('analysis_tools/get_flops', config, '--num-images', '2', cwd=root)
    flops = re.search(r'Flops: ([\d.]+)([KMGT])', out)
    params = re.search(r'Params: ([\d.]+)([KMG])', out)
    unit = dict(K=1e3, M=1e6, G=1e9, T=1e12)
    model = init_model(str(config))
    macs = count_macs(DenseDetector(model, 'tensor'), torch.rand(1, 3, 64, 64))
    assert macs <= float(flops.group(1)) * unit[flops.group(2)] <= 1.1 * macs
    n = sum(p.numel() for p in model.parameters())
    assert abs(float(params.group(1)) * unit[params.group(2)] - n) <= 0.01 * n


def test_browse_dataset(tiny, tmp_path):
    config, _ = tiny
    tool('analysis_tools/browse_dataset', config, '--not-show', '--output-dir', tmp_path,
         cwd=tmp_path)
    assert sorted(p.name for p in tmp_path.glob('*.png')) == [f'{i}.png' for i in range(4)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_train_and_test_two_cpu_processes(tiny, tmp_path):
    config, _ = tiny
    out = run('bash', REPO / 'tools' / 'dist_train.sh', config, 2, '--work-dir', tmp_path,
              cwd=tmp_path, PYTHON=sys.executable, PORT=str(free_port()))
    assert 'Distributed training: True' in out and 'GPU number: 2' in out
    assert 'Iter(train) [2/2]' in out
    ckpt = tmp_path / 'iter_2.pth'
    assert ckpt.is_file()

    out = run('bash', REPO / 'tools' / 'dist_test.sh', config, ckpt, 2, '--work-dir',
              tmp_path / 'test', cwd=tmp_path, PYTHON=sys.executable, PORT=str(free_port()))
    assert re.search(r'coco/bbox_mAP: -?\d', out)


def test_unknown_mmdet_tool_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match=r"mmdet has no tool 'analysis_tools/nope'.*"
                       r'analysis_tools/get_flops'):
        mmdet_tool_path('analysis_tools/nope')


def test_cpu_launcher_shim_leaves_other_commands_alone():
    argv = ['cfg.py', '--work-dir', 'w']
    assert cpu_distributed_args(argv) == argv
    assert cpu_distributed_args([*argv, '--launcher', 'none']) == [*argv, '--launcher', 'none']
