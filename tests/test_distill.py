"""CompConvDistiller, its losses and checks, and UnlabeledImageDataset: exact checks on tiny
models (ResNet-18 with 8 base channels, 32x32 images) and a two-iteration Runner run."""
import copy
import json
import re
from pathlib import Path

import mmcv
import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner

from mmdet_compconv import CompConv
from mmdet_compconv.checkpoint import safe_load
from mmdet_compconv.datasets import UnlabeledImageDataset
from mmdet_compconv.checkpoint import load_pretrained
from mmdet_compconv.models import CompConvDistiller
from mmdet_compconv.models.distillers import load_teacher_checkpoint, residual_blocks
from mmdet_compconv.models.losses import ChannelNormMSELoss, PKDLoss, SigmoidKDLoss

TINY = dict(depth=18, base_channels=8, stem_channels=8, norm_eval=False)
TEACHER = dict(type='ResNet', **TINY)
STUDENT = dict(type='CompConvResNet', compconv_cfg=dict(type='CompConv', c0=4), **TINY)
PREPROCESSOR = dict(type='DetDataPreprocessor', mean=[0.0] * 3, std=[255.0] * 3)


pytestmark = pytest.mark.usefixtures('mmdet_scope_one_thread')  # tests/conftest.py


def distiller(**kwargs) -> CompConvDistiller:
    args = dict(teacher=TEACHER, student=STUDENT, teacher_ckpt=None, blockwise_iters=5,
                data_preprocessor=PREPROCESSOR)
    args.update(kwargs)
    return CompConvDistiller(**args)


def set_iter(i: int) -> None:
    MessageHub.get_current_instance().update_info('iter', i)


@pytest.fixture
def teacher_ckpt(tmp_path) -> str:
    torch.manual_seed(1)
    model = MODELS.build(TEACHER)
    path = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def write_images(folder: Path, n: int, size: int = 32) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        sub = folder / ('a' if i % 2 else 'b/c')
        sub.mkdir(parents=True, exist_ok=True)
        mmcv.imwrite(rng.integers(0, 255, (size, size, 3), dtype=np.uint8), str(sub / f'{i}.png'))


# ---------------------------------------------------------------- loss

def test_channel_norm_mse_weights_each_channel_by_teacher_std():
    teacher = torch.zeros(2, 2, 3, 3)
    teacher[:, 0] = torch.arange(18.).view(2, 3, 3)  # channel 0: std s
    teacher[:, 1] = 100 * torch.arange(18.).view(2, 3, 3)  # channel 1: std 100 s
    student = teacher.clone()
    student[:, 0] += 1.0
    student[:, 1] += 100.0  # the same error relative to each channel's spread
    std = teacher[:, 0].std(unbiased=False)
    loss = ChannelNormMSELoss(eps=0.0)(student, teacher)
    assert torch.allclose(loss, 1.0 / std**2)
    with pytest.raises(ValueError, match=r'\(2, 2, 3, 3\)'):
        ChannelNormMSELoss()(student[:, :1], teacher)
    with pytest.raises(ValueError, match='eps must be >= 0, got -1'):
        ChannelNormMSELoss(eps=-1)


def test_channel_norm_mse_bounds_the_weight_of_a_dead_channel():
    teacher = torch.rand(2, 2, 3, 3)
    teacher[:, 1] = 0.0  # a dead ReLU channel
    student = teacher.clone()
    student[:, 1] = 1.0
    var0 = teacher[:, 0].var(unbiased=False)
    expected = 0.5 * 1.0 / (0.1 * var0 / 2)  # channel 1's floor: eps * mean variance
    assert torch.allclose(ChannelNormMSELoss(eps=0.1)(student, teacher), expected)


# ---------------------------------------------------------------- checks

@pytest.mark.parametrize('student, match', [
    (dict(STUDENT, depth=34), 'only in the student'),
    (dict(STUDENT, base_channels=16), 'different'),
    (dict(STUDENT, stem_channels=16), 'differ in their stems'),
    (dict(STUDENT, out_indices=(1, 2, 3)), r'out_indices=\(1, 2, 3\)'),
    (dict(STUDENT, frozen_stages=1), 'frozen'),
    (dict(STUDENT, norm_eval=True), 'norm_eval=True'),
])
def test_student_not_fitting_teacher_is_refused(student, match):
    with pytest.raises(ValueError, match=match):
        distiller(student=student)


def test_teacher_with_compconv_is_refused():
    with pytest.raises(ValueError, match='CompConv layers: layer1.0.conv1'):
        distiller(teacher=STUDENT)


def test_detector_and_backbone_mixed_is_refused():
    cfg = Config.fromfile('configs/shapes/faster-rcnn_compconv128-r18_fpn_shapes.py')
    with pytest.raises(ValueError, match='is a backbone but student .* is a detector'):
        distiller(student=cfg.model)


@pytest.mark.parametrize('kwargs, match', [
    (dict(blockwise_iters=-1), 'blockwise_iters must be an int >= 0, got -1'),
    (dict(stage_loss_weight=-0.5), 'stage_loss_weight must be a number >= 0, got -0.5'),
    (dict(stage_loss_weight=0), 'all 0'),
    (dict(neck_loss_weight=1.0), 'need a detector student'),
])
def test_bad_schedule_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        distiller(**kwargs)


def test_teacher_checkpoint_that_does_not_fit_lists_the_keys(tmp_path, teacher_ckpt):
    model = distiller(teacher_ckpt=teacher_ckpt)
    state = safe_load(teacher_ckpt)['state_dict']
    del state['layer1.0.conv1.weight']
    state['extra.weight'] = torch.zeros(1)
    state['conv1.weight'] = torch.zeros(1, 1, 1, 1)
    bad = str(tmp_path / 'bad.pth')
    torch.save(state, bad)
    with pytest.raises(ValueError) as info:
        load_teacher_checkpoint(model.teacher, bad)
    text = str(info.value)
    assert bad in text and 'missing keys in source state_dict: layer1.0.conv1.weight' in text
    assert ('size mismatch for conv1.weight: copying a param with shape torch.Size([1, 1, 1, 1]) '
            'from checkpoint, the shape in current model is torch.Size([8, 3, 7, 7])') in text
    assert 'unexpected key in source state_dict: extra.weight' in text


@pytest.mark.parametrize('detector', [False, True])
def test_deeper_resnet_checkpoint_does_not_load_into_a_shallower_teacher(tmp_path, detector):
    """R-34 weights (plain or a detector's backbone) into an R-18 teacher: the extra blocks
    (layer1.2, ...) are an error, not a truncated teacher."""
    state = MODELS.build(dict(TEACHER, depth=34)).state_dict()
    if detector:
        state = {**{f'backbone.{k}': v for k, v in state.items()},
                 'neck.lateral_convs.0.conv.weight': torch.zeros(1)}
    path = str(tmp_path / 'r34.pth')
    torch.save({'state_dict': state}, path)
    with pytest.raises(ValueError, match=r'(?s)does not fit the teacher ResNet: .*unexpected key in '
                       r'source state_dict: .*layer1\.2\.conv1\.weight'):
        load_teacher_checkpoint(MODELS.build(TEACHER), path)


def test_only_classifier_keys_may_be_left_unused(tmp_path, teacher_ckpt, log_records):
    state = safe_load(teacher_ckpt)['state_dict']
    path = str(tmp_path / 'imagenet.pth')
    torch.save({**state, 'fc.weight': torch.zeros(10, 64), 'fc.bias': torch.zeros(10)}, path)
    teacher = MODELS.build(TEACHER)
    load_teacher_checkpoint(teacher, path)
    assert all(torch.equal(v, state[k]) for k, v in teacher.state_dict().items())
    assert any("ignored the 2 classifier keys it does not have: ['fc.weight', 'fc.bias']"
               in r.getMessage() for r in log_records)
    torch.save({**state, 'head.fc.weight': torch.zeros(10, 64), 'stem.weight': torch.zeros(1)},
               path)
    with pytest.raises(ValueError, match='unexpected key in source state_dict: stem.weight'):
        load_teacher_checkpoint(teacher, path)


def test_teacher_checkpoint_prefixes_and_extra_keys(tmp_path, teacher_ckpt):
    """A detector / mmpretrain checkpoint (backbone.*) and a classifier's fc.* load."""
    state = safe_load(teacher_ckpt)['state_dict']
    wrapped = {f'backbone.{k}': v for k, v in state.items()}
    wrapped['head.fc.weight'] = torch.zeros(3)
    path = str(tmp_path / 'cls.pth')
    torch.save({'meta': {}, 'state_dict': wrapped}, path)
    model = distiller(teacher_ckpt=path)
    model.init_weights()
    assert all(torch.equal(v, state[k]) for k, v in model.teacher.state_dict().items())


# ---------------------------------------------------------------- behaviour

def test_init_weights_copies_every_fitting_tensor(teacher_ckpt):
    model = distiller(teacher_ckpt=teacher_ckpt)
    copied, left = model.copy_from_teacher()
    teacher, student = model.teacher.state_dict(), model.student.state_dict()
    assert copied and all(torch.equal(student[k], teacher[k]) for k in copied)
    compconvs = [n for n, m in model.student.named_modules() if isinstance(m, CompConv)]
    assert left and all(any(m.startswith(c) for c in compconvs) for m in left)
    assert 'layer1.0.bn1.weight' in copied and 'layer2.0.downsample.0.weight' in copied


def test_phase1_feeds_each_student_block_its_teacher_block_input():
    model = distiller()
    x = torch.rand(2, 3, 32, 32)
    t_in, s_in = {}, {}
    hooks = [b.register_forward_pre_hook(lambda m, a, n=n: t_in.__setitem__(n, a[0]))
             for n, b in residual_blocks(model.teacher).items()]
    hooks += [b.register_forward_pre_hook(lambda m, a, n=n: s_in.__setitem__(n, a[0]))
              for n, b in residual_blocks(model.student).items()]
    set_iter(0)
    losses = model(x, mode='loss')
    for h in hooks:
        h.remove()
    assert sorted(s_in) == sorted(model.distilled_blocks) == sorted(t_in)
    assert all(torch.equal(s_in[n], t_in[n]) for n in s_in)
    assert sorted(losses) == sorted(f'loss_block_{n.replace(".", "_")}' for n in s_in)
    with torch.no_grad():
        expected = model.distill_loss(model.student.layer2[1](t_in['layer2.1']),
                                      model.teacher.layer2[1](t_in['layer2.1']))
    assert torch.allclose(losses['loss_block_layer2_1'], expected)


def test_phase2_matches_stage_outputs():
    model = distiller()
    set_iter(5)  # == blockwise_iters: phase 2
    x = torch.rand(2, 3, 32, 32)
    losses = model(x, mode='loss')
    assert sorted(losses) == [f'loss_distill_stage{i}' for i in range(4)]
    with torch.no_grad():
        s, t = model.student(x), model.teacher(x)
    assert torch.allclose(losses['loss_distill_stage3'], model.distill_loss(s[3], t[3]))
    set_iter(0)


def test_teacher_frozen_and_not_in_optimizer():
    model = distiller()
    wrapper = build_optim_wrapper(model, dict(optimizer=dict(type='AdamW', lr=1e-3)))
    in_optimizer = {id(p) for g in wrapper.optimizer.param_groups for p in g['params']}
    assert not any(id(p) in in_optimizer for p in model.teacher.parameters())
    assert all(id(p) in in_optimizer for p in model.student.parameters())
    assert not any(p.requires_grad for p in model.teacher.parameters())
    model.train()
    assert not model.teacher.training and model.student.training


def test_state_dict_is_the_students_and_loads_back():
    model = distiller()
    state = model.state_dict()
    assert list(state) == list(model.student.state_dict())
    other = distiller()
    missing, unexpected = other.load_state_dict(state, strict=True)
    assert not missing and not unexpected
    assert all(torch.equal(v, state[k]) for k, v in other.student.state_dict().items())
    # keys of a checkpoint that kept its teacher are dropped, not unexpected
    other.load_state_dict({**state, 'teacher.conv1.weight': torch.zeros(1)}, strict=True)


# ---------------------------------------------------------------- dataset

def test_dataset_folder_recursive_and_undecodable_skipped(tmp_path, caplog):
    write_images(tmp_path, 3)
    (tmp_path / 'a' / 'broken.jpg').write_bytes(b'not an image')
    (tmp_path / 'notes.txt').write_text('ignored')
    ds = UnlabeledImageDataset(data_root=str(tmp_path), serialize_data=False,
                               pipeline=[dict(type='LoadImageFromFile')])
    paths = [ds.get_data_info(i)['img_path'] for i in range(len(ds))]
    assert len(ds) == 4 and sum(p.endswith('broken.jpg') for p in paths) == 1
    broken = next(i for i, p in enumerate(paths) if p.endswith('broken.jpg'))
    assert ds.prepare_data(broken) is None and ds.num_skipped == 1
    item = ds[broken]  # mmengine draws other indices until one decodes
    assert item['img'].shape == (32, 32, 3) and not item['img_path'].endswith('broken.jpg')
    assert ds.num_skipped >= 2


def test_dataset_error_on_decodable_image_is_raised(tmp_path):
    write_images(tmp_path, 1)
    ds = UnlabeledImageDataset(data_root=str(tmp_path),
                               pipeline=[dict(type='LoadImageFromFile'),
                                         dict(type='Resize', scale=(-5, -5))])
    with pytest.raises(Exception):
        ds.prepare_data(0)


def test_dataset_coco_images(tmp_path):
    write_images(tmp_path / 'img', 2)
    ann = {'images': [{'id': 7, 'file_name': 'b/c/0.png'}, {'id': 8, 'file_name': 'a/1.png'}],
           'annotations': [], 'categories': []}
    (tmp_path / 'ann.json').write_text(json.dumps(ann))
    ds = UnlabeledImageDataset(data_root=str(tmp_path), ann_file='ann.json',
                               data_prefix=dict(img='img/'), pipeline=[])
    assert [Path(ds.get_data_info(i)['img_path']).name for i in range(2)] == ['0.png', '1.png']


def test_dataset_empty_or_missing_is_an_error(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='no image in folder .*empty'):
        UnlabeledImageDataset(data_root=str(tmp_path / 'empty'))
    with pytest.raises(FileNotFoundError, match='nowhere'):
        UnlabeledImageDataset(data_root=str(tmp_path / 'nowhere'))
    with pytest.raises(FileNotFoundError, match='missing.json'):
        UnlabeledImageDataset(data_root=str(tmp_path), ann_file='missing.json')


def test_dataset_follows_symlinked_folders_once(tmp_path, log_records):
    """Review item 4: Path.rglob (Python 3.11) did not follow a linked folder: 2 of 18."""
    write_images(tmp_path / 'real', 16)
    root = tmp_path / 'root'
    write_images(root, 2)
    (root / 'linked').symlink_to(tmp_path / 'real', target_is_directory=True)
    (tmp_path / 'real' / 'loop').symlink_to(root, target_is_directory=True)  # a link loop
    ds = UnlabeledImageDataset(data_root=str(root))
    assert len(ds) == 18
    assert any(f'18 images from folder {str(root)!r}' in r.getMessage() for r in log_records)


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(data_prefix=dict(img='wrong/')), FileNotFoundError,
     r"0 of the 2 images listed in '.*ann.json' exist under '.*wrong/'"),
    (dict(data_prefix=dict(img_path='img/')), ValueError,
     r"data_prefix must be dict\(img=SUBFOLDER\), got data_prefix=\{'img_path': 'img/'\}"),
    (dict(ann_file='list.json'), ValueError,
     r"ann_file='.*list.json' is not a COCO annotation file: it holds a list"),
    (dict(data_root='FILE'), NotADirectoryError, r"data_root='.*ann.json' is a file"),
])
def test_dataset_bad_coco_arguments_fail_at_build_naming_them(tmp_path, kwargs, error, match):
    """Review item 12: a wrong prefix built, then warned 1001 times; a JSON list, a wrong
    data_prefix key and a file as data_root failed with unrelated errors."""
    write_images(tmp_path / 'img', 2)
    ann = {'images': [{'id': 7, 'file_name': 'b/c/0.png'}, {'id': 8, 'file_name': 'a/1.png'}]}
    (tmp_path / 'ann.json').write_text(json.dumps(ann))
    (tmp_path / 'list.json').write_text(json.dumps(ann['images']))
    args = dict(data_root=str(tmp_path), ann_file='ann.json', data_prefix=dict(img='img/'))
    args.update(kwargs)
    if args['data_root'] == 'FILE':
        args['data_root'] = str(tmp_path / 'ann.json')
    with pytest.raises(error, match=match):
        UnlabeledImageDataset(**args)


def test_dataset_has_no_empty_class_list(tmp_path):
    """Review item 9: classes=() in the metainfo went into checkpoints and broke
    DetInferencer's drawing; a config can pass the teacher's classes."""
    write_images(tmp_path, 1)
    assert 'classes' not in UnlabeledImageDataset(data_root=str(tmp_path)).metainfo
    ds = UnlabeledImageDataset(data_root=str(tmp_path), metainfo=dict(classes=('a', 'b')))
    assert ds.metainfo['classes'] == ('a', 'b')


# ---------------------------------------------------------------- Runner

def runner_cfg(work_dir: Path, images: Path, teacher_ckpt: str, max_iters: int, **kw):
    return Config(dict(
        default_scope='mmdet',
        work_dir=str(work_dir),
        model=dict(type='CompConvDistiller', teacher=TEACHER, student=STUDENT,
                   teacher_ckpt=teacher_ckpt, blockwise_iters=1,
                   data_preprocessor=PREPROCESSOR),
        train_dataloader=dict(
            batch_size=2, num_workers=0,
            sampler=dict(type='InfiniteSampler', shuffle=True),
            collate_fn=dict(type='pseudo_collate'),
            dataset=dict(type='UnlabeledImageDataset', data_root=str(images),
                         pipeline=[dict(type='LoadImageFromFile'),
                                   dict(type='PackDetInputs')])),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
                           logger=dict(type='LoggerHook', interval=1)),
        log_processor=dict(by_epoch=False),
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        **kw))


def test_distilled_detector_checkpoint_draws_in_det_inferencer(tmp_path):
    """Review item 9: the checkpoint of a detector distillation carried classes=() from the
    unlabeled dataset and DetInferencer raised an IndexError drawing its boxes. Now it carries
    the teacher's classes (the shapes config passes them)."""
    from mmdet.apis import DetInferencer
    images = tmp_path / 'data' / 'train'
    write_images(images, 2, size=64)
    teacher_cfg = Config.fromfile('configs/shapes/faster-rcnn_r18_fpn_shapes.py')
    teacher = MODELS.build(teacher_cfg.model)
    torch.save({'state_dict': teacher.state_dict()}, tmp_path / 'teacher.pth')
    cfg = Config.fromfile('configs/distill/faster-rcnn_compconv128-r18_fpn_distill-r18_shapes.py')
    cfg.merge_from_dict({
        'work_dir': str(tmp_path / 'run'), 'model.teacher_ckpt': str(tmp_path / 'teacher.pth'),
        'model.blockwise_iters': 1, 'train_cfg.max_iters': 2, 'param_scheduler': [],
        'default_hooks.checkpoint.interval': 2, 'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False,
        'train_dataloader.dataset.data_root': str(tmp_path / 'data') + '/'})
    Runner.from_cfg(cfg).train()
    ckpt = tmp_path / 'run' / 'iter_2.pth'
    assert safe_load(str(ckpt))['meta']['dataset_meta']['classes'] == teacher_cfg.metainfo.classes
    inferencer = DetInferencer(model='configs/shapes/faster-rcnn_compconv128-r18_fpn_shapes.py',
                               weights=str(ckpt), device='cpu', show_progress=False)
    inferencer(str(images / 'a' / '1.png'), out_dir=str(tmp_path / 'out'), no_save_pred=True,
               pred_score_thr=0.0)
    assert list((tmp_path / 'out' / 'vis').glob('*.png'))


def test_runner_checkpoint_holds_the_student_only_and_resumes(tmp_path, teacher_ckpt):
    write_images(tmp_path / 'images', 4)
    runner = Runner.from_cfg(runner_cfg(tmp_path / 'run', tmp_path / 'images', teacher_ckpt, 2))
    runner.train()
    model = runner.model
    assert not model.teacher.training
    # each phase logs its own losses: phase 1 the blocks', phase 2 the stages' (no stale
    # block losses repeated after phase 1)
    log = next((tmp_path / 'run').glob('*/*.log')).read_text()
    iter1, iter2 = (next(line for line in log.splitlines() if f'Iter(train) [{i}/2]' in line)
                    for i in (1, 2))
    assert 'loss_block_layer1_0' in iter1 and 'loss_distill_stage' not in iter1
    assert 'loss_distill_stage3' in iter2 and 'loss_block_' not in iter2
    ckpt = safe_load(str(tmp_path / 'run' / 'iter_2.pth'))
    keys = list(ckpt['state_dict'])
    assert keys == list(model.student.state_dict())
    assert not any(k.startswith(('teacher', 'student')) for k in keys)

    # the checkpoint is an ordinary backbone checkpoint: nothing of the CompConvs is missing
    fresh = MODELS.build(STUDENT)
    report = load_pretrained(fresh, str(tmp_path / 'run' / 'iter_2.pth'))
    assert report.complete and not report.unexpected and report.loaded == report.total

    # --resume continues at iteration 2 with the student's weights
    cfg = runner_cfg(tmp_path / 'run', tmp_path / 'images', teacher_ckpt, 3, resume=True)
    resumed = Runner.from_cfg(cfg)
    seen = {}
    resumed.register_hook(ResumeProbe(seen), priority='VERY_LOW')
    resumed.train()
    assert seen['iter'] == 2
    assert all(torch.equal(v, ckpt['state_dict'][k]) for k, v in seen['state'].items())


class ResumeProbe(Hook):
    """Records the iteration and student weights when the resumed loop starts."""

    def __init__(self, seen: dict):
        self.seen = seen

    def before_train(self, runner):
        self.seen['iter'] = runner.iter
        self.seen['state'] = copy.deepcopy(runner.model.state_dict())


def test_fine_tune_adds_task_loss_and_distills_the_neck_of_the_same_forward():
    cfg = Config.fromfile('configs/distill/faster-rcnn_compconv128-r18_fpn_distill-r18-ft-4e_shapes.py')
    cfg.model.teacher_ckpt = None
    cfg.model.task_loss_weight = 0.5
    model = MODELS.build(cfg.model).train()
    data = model.data_preprocessor(
        demo_mm_inputs(2, [[3, 64, 64]] * 2, num_classes=5, num_items=[2, 3]), True)
    torch.manual_seed(0)
    losses = model(**data, mode='loss')
    with torch.no_grad():
        s_neck = model.student.extract_feat(data['inputs'])
        t_neck = model.teacher.extract_feat(data['inputs'])
    for i in range(5):
        assert torch.allclose(losses[f'loss_distill_neck{i}'],
                              model.distill_loss(s_neck[i], t_neck[i]), rtol=1e-4)
    torch.manual_seed(0)
    task = model.student.loss(data['inputs'], data['data_samples'])
    assert torch.allclose(losses['loss_cls'], 0.5 * task['loss_cls'], rtol=1e-4)
    assert torch.equal(losses['acc'], task['acc'])  # logged, not a loss: not scaled


@pytest.mark.parametrize('student_parts, weights, unreached', [
    (dict(rpn_head=dict(type='CompConvRPNHead')), dict(task_loss_weight=0.0, neck_loss_weight=1.0),
     ['rpn_head.rpn_conv']),
    (dict(neck=dict(type='CompConvFPN')), dict(task_loss_weight=0.0, neck_loss_weight=0.0),
     ['neck.lateral_convs.0.conv', 'neck.lateral_convs.1.conv']),
])
def test_compconvs_no_loss_reaches_are_refused(student_parts, weights, unreached):
    """Review item 2: a CompConv RPN head without task loss, or a CompConv FPN without neck
    or task loss, kept its random init while the log said 'left to learn'."""
    teacher = Config.fromfile('configs/shapes/faster-rcnn_r18_fpn_shapes.py').model
    student = Config.fromfile('configs/shapes/faster-rcnn_compconv128-r18_fpn_shapes.py').model
    for key, part in student_parts.items():
        student[key].update(part)
    with pytest.raises(ValueError, match=r"student CompConvs are reached by no loss and would "
                       r"keep their random initialisation: \[" + re.escape(repr(unreached)[1:-1])):
        distiller(teacher=teacher, student=student, data_preprocessor=None, **weights)
    # the loss that reaches them makes the same student fine
    fix = dict(task_loss_weight=1.0) if 'rpn_head' in student_parts else dict(neck_loss_weight=1.0)
    distiller(teacher=teacher, student=student, data_preprocessor=None, **dict(weights, **fix))


def test_teacher_normalising_otherwise_is_refused():
    """Review item 6: a caffe-style teacher (std 1, BGR) fed the student's pytorch-normalised
    RGB input, silently."""
    teacher = Config.fromfile('configs/shapes/faster-rcnn_r18_fpn_shapes.py').model
    student = Config.fromfile('configs/shapes/faster-rcnn_compconv128-r18_fpn_shapes.py').model
    caffe = copy.deepcopy(teacher)
    caffe.data_preprocessor.update(mean=[103.53, 116.28, 123.675], std=[1.0, 1.0, 1.0],
                                   bgr_to_rgb=False)
    with pytest.raises(ValueError, match=r"(?s)teacher detector's data_preprocessor normalises "
                       r"its input as \{'mean': \[103.53, 116.28, 123.675\], 'std': \[1.0, 1.0, "
                       r"1.0\], 'swap_rgb_bgr': False\}, but .* as \{'mean': \[123.675"):
        distiller(teacher=caffe, student=student, data_preprocessor=None, neck_loss_weight=1.0)
    distiller(teacher=teacher, student=student, data_preprocessor=None, neck_loss_weight=1.0)


def test_backbone_student_needs_a_data_preprocessor():
    """Review item 11: without one, training failed at step 1 with a conv2d TypeError."""
    with pytest.raises(ValueError, match='data_preprocessor is required for a backbone student'):
        distiller(data_preprocessor=None)


def test_deep_stem_teacher_and_plain_stem_student_are_refused():
    """Review item 16: a V1d (deep stem) teacher passed the twin check with a plain-stem
    student, whose stem then stayed random."""
    with pytest.raises(ValueError, match=r"differ in their stems .*teacher \(\('stem.0', 3, 4"):
        distiller(teacher=dict(TEACHER, deep_stem=True), student=STUDENT)
    distiller(teacher=dict(TEACHER, deep_stem=True), student=dict(STUDENT, deep_stem=True))
    distiller(teacher=dict(TEACHER, type='ResNetV1d'),
              student=dict(STUDENT, type='CompConvResNetV1d'))


# ---------------------------------------------------------------- detector losses (issue 20)

def test_pkd_loss_is_one_minus_pearson_per_channel():
    torch.manual_seed(0)
    t = torch.randn(2, 3, 4, 5)
    s = torch.randn(2, 3, 4, 5)
    r = torch.stack([torch.corrcoef(torch.stack([s[:, c].flatten(), t[:, c].flatten()]))[0, 1]
                     for c in range(3)])
    assert torch.allclose(PKDLoss()(s, t), (1 - r).mean(), atol=1e-5)
    scaled = s * torch.tensor([1., 10., 0.1]).view(1, 3, 1, 1) + 5  # per-channel scale, offset
    assert torch.allclose(PKDLoss()(scaled, t), PKDLoss()(s, t), atol=1e-5)
    assert torch.allclose(PKDLoss(loss_weight=3.0)(s, t), 3 * PKDLoss()(s, t))
    with pytest.raises(ValueError, match=r'\(2, 1, 4, 5\)'):
        PKDLoss()(s[:, :1], t)


def test_sigmoid_kd_loss_weights_the_gap_and_counts_soft_positives():
    t = torch.tensor([[4.0, -4.0, 0.0]])
    s = torch.tensor([[0.0, -4.0, 0.0]])  # wrong only on the first
    p = torch.sigmoid(t)
    gap = (torch.sigmoid(torch.tensor(0.0)) - p[0, 0]).abs()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(0.0), p[0, 0])
    expected = bce * gap**2 / max(p.sum(), 1.0)
    assert torch.allclose(SigmoidKDLoss()(s, t), expected)
    assert float(SigmoidKDLoss()(t, t)) == 0.0
    assert float(SigmoidKDLoss(gamma=0.0)(t, t)) > 0  # without the gap weight: the entropy
    s.requires_grad_(True)
    SigmoidKDLoss()(s, t).backward()
    assert s.grad[0, 0] < 0 and s.grad[0, 1] == 0 and s.grad[0, 2] == 0  # pushed up to 4


HEADS = dict(dense_cls=dict(type='SigmoidKDLoss'),
             roi_cls=dict(type='KnowledgeDistillationKLDivLoss', T=2, loss_weight=1.0),
             roi_reg=dict(type='L1Loss', loss_weight=1.0))


def _shapes_fine_tune(config: str, **model):
    cfg = Config.fromfile(config)
    cfg.model.teacher_ckpt = None
    cfg.model.update(model)
    return MODELS.build(cfg.model).train()


def _demo_batch(model):
    return model.data_preprocessor(
        demo_mm_inputs(2, [[3, 64, 64]] * 2, num_classes=5, num_items=[2, 3]), True)


def test_head_distillation_matches_the_teachers_heads_on_the_students_rois():
    model = _shapes_fine_tune(
        'configs/distill/faster-rcnn_compconv128-r18_fpn_distill-r18-ft-4e_shapes.py',
        neck_distill_loss=dict(type='PKDLoss'), head_distill=HEADS)
    data = _demo_batch(model)
    seen = {}
    handle = model.student.roi_head.bbox_roi_extractor.register_forward_hook(
        lambda m, args, out: seen.update(rois=args[1]))
    losses = model(**data, mode='loss')
    handle.remove()
    for key in ('dense_cls', 'roi_cls', 'roi_reg'):
        assert losses[f'loss_distill_{key}'].requires_grad, key
    with torch.no_grad():
        s_neck = model.student.extract_feat(data['inputs'])
        t_neck = model.teacher.extract_feat(data['inputs'])
        # the neck loss is the PKD one, per level
        assert torch.allclose(losses['loss_distill_neck0'],
                              model.neck_distill_loss(s_neck[0], t_neck[0]), rtol=1e-4)
        # RoI classification: the teacher's RoI head on the student's sampled RoIs
        rois = seen['rois']
        s_out = model.student.roi_head._bbox_forward(s_neck, rois)
        t_out = model.teacher.roi_head._bbox_forward(t_neck, rois)
        assert torch.allclose(losses['loss_distill_roi_cls'],
                              model.head_distill['roi_cls'](s_out['cls_score'],
                                                            t_out['cls_score']), rtol=1e-4)
        # dense: the RPN objectness of all levels
        s_rpn = torch.cat([c.flatten(1) for c in model.student.rpn_head(s_neck)[0]], 1)
        t_rpn = torch.cat([c.flatten(1) for c in model.teacher.rpn_head(t_neck)[0]], 1)
        assert torch.allclose(losses['loss_distill_dense_cls'],
                              SigmoidKDLoss()(s_rpn, t_rpn), rtol=1e-4)


def test_head_distillation_of_a_single_stage_detector_and_its_checks():
    model = _shapes_fine_tune(
        'configs/distill/retinanet_compconv128-r18_fpn_distill-r18-ft-4e_shapes.py',
        head_distill=dict(dense_cls=HEADS['dense_cls']))
    losses = model(**_demo_batch(model), mode='loss')
    assert losses['loss_distill_dense_cls'] > 0 and 'loss_distill_roi_cls' not in losses
    assert not any(k.startswith('head_distill') for k in model.state_dict())
    retinanet = 'configs/distill/retinanet_compconv128-r18_fpn_distill-r18-ft-4e_shapes.py'
    with pytest.raises(ValueError, match='needs a two-stage student'):
        _shapes_fine_tune(retinanet, head_distill=dict(roi_cls=HEADS['roi_cls']))
    with pytest.raises(ValueError, match='keys must be among'):
        _shapes_fine_tune(retinanet, head_distill=dict(rpn=HEADS['dense_cls']))
    with pytest.raises(ValueError, match='needs task_loss_weight > 0'):
        _shapes_fine_tune(retinanet, task_loss_weight=0.0, head_distill=HEADS)
