"""Heads with CompConv: RetinaHead through conv_cfg, and CompConvRPNHead."""
import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.models.dense_heads import RetinaHead, RPNHead
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from mmdet_compconv import CompConv
from mmdet_compconv.models import CompConvRPNHead
from mmdet_compconv.cnn import conv_layers, count_macs

C = 32
SIZE = 64
STRIDES = [8, 16]
BBOX_CODER = dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4, target_stds=[1.] * 4)


def feats(requires_grad=False):
    torch.manual_seed(0)
    return tuple(torch.rand(1, C, SIZE // s, SIZE // s, requires_grad=requires_grad)
                 for s in STRIDES)


def data_samples(label):
    sample = DetDataSample(metainfo=dict(img_shape=(SIZE, SIZE), pad_shape=(SIZE, SIZE),
                                         scale_factor=(1., 1.)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[4., 6., 40., 50.]]),
                                       labels=torch.tensor([label]))
    return [sample]


def retina_cfg(**kwargs):
    return dict(
        type='RetinaHead', num_classes=3, in_channels=C, stacked_convs=2, feat_channels=C,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3,
                              ratios=[0.5, 1.0, 2.0], strides=STRIDES),
        bbox_coder=BBOX_CODER,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0),
        train_cfg=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0,
                          ignore_iof_thr=-1),
            sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1, debug=False),
        **kwargs)


def rpn_cfg(**kwargs):
    return dict(
        type='CompConvRPNHead', in_channels=C, feat_channels=C,
        anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                              strides=STRIDES),
        bbox_coder=BBOX_CODER,
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0),
        train_cfg=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3,
                          min_pos_iou=0.3, match_low_quality=True, ignore_iof_thr=-1),
            sampler=dict(type='RandomSampler', num=64, pos_fraction=0.5, neg_pos_ub=-1,
                         add_gt_as_proposals=False),
            allowed_border=-1, pos_weight=-1, debug=False),
        **kwargs)


def assert_trains(head, label):
    """loss() runs, gives finite losses, and every CompConv weight gets a gradient."""
    head.init_weights()
    x = feats(requires_grad=True)
    losses = head.loss(x, data_samples(label))
    total = sum(v if isinstance(v, torch.Tensor) else sum(v) for v in losses.values())
    assert torch.isfinite(total) and total > 0
    total.backward()
    compconvs = [m for m in head.modules() if isinstance(m, CompConv)]
    assert compconvs
    for m in compconvs:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
    assert all(t.grad is not None for t in x)


def test_retina_head_with_compconv_conv_cfg():
    cfg = retina_cfg(conv_cfg=dict(type='CompConv', c0=8))
    head = MODELS.build(cfg)
    convs = [m.conv for m in head.modules() if isinstance(m, ConvModule)]
    assert len(convs) == 4 and all(isinstance(c, CompConv) for c in convs)
    assert {c.depth for c in convs} == {3}
    assert type(head.retina_cls) is nn.Conv2d  # the 3x3 predictors stay plain
    plain = MODELS.build(retina_cfg())
    cls, reg = head(feats())
    ref_cls, ref_reg = plain(feats())
    assert [t.shape for t in cls] == [t.shape for t in ref_cls] == [
        (1, 9 * 3, SIZE // s, SIZE // s) for s in STRIDES]
    assert [t.shape for t in reg] == [t.shape for t in ref_reg]
    assert sum(p.numel() for p in head.parameters()) < sum(p.numel() for p in plain.parameters())
    assert_trains(head, label=1)
    # counted == analytic for the whole head
    x = feats()
    assert count_macs(head, x) == sum(c.macs for c in conv_layers(head, x))


def test_retina_head_scope():
    """conv_cfg=dict(type='CompConv') resolves from mmdet's scope too (root registry)."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        head = RetinaHead(num_classes=3, in_channels=C, stacked_convs=1, feat_channels=C,
                          conv_cfg=dict(type='CompConv'),
                          anchor_generator=retina_cfg()['anchor_generator'])
    assert isinstance(head.cls_convs[0].conv, CompConv)


def test_rpn_head():
    head = MODELS.build(rpn_cfg(compconv_cfg=dict(type='CompConv', c0=8)))
    assert type(head) is CompConvRPNHead and isinstance(head, RPNHead)
    assert isinstance(head.rpn_conv, CompConv)
    assert head.rpn_conv.kernel_size == (3, 3) and head.rpn_conv.depth == 3
    assert head.rpn_conv.bias is not None  # as RPNHead's nn.Conv2d
    assert type(head.rpn_cls) is nn.Conv2d and type(head.rpn_reg) is nn.Conv2d

    ref = MODELS.build(dict(rpn_cfg(), type='RPNHead'))
    assert type(ref.rpn_conv) is nn.Conv2d
    out, ref_out = head(feats()), ref(feats())
    for a, b in zip(out, ref_out):
        assert [t.shape for t in a] == [t.shape for t in b]
    assert [t.shape for t in out[0]] == [(1, 3, SIZE // s, SIZE // s) for s in STRIDES]
    n_conv = sum(p.numel() for p in head.rpn_conv.parameters())
    assert n_conv < 0.5 * sum(p.numel() for p in ref.rpn_conv.parameters())
    assert_trains(head, label=0)


def test_rpn_head_variants_and_errors():
    head = MODELS.build(rpn_cfg(num_convs=2))
    assert len(head.rpn_conv) == 2
    assert all(isinstance(m.conv, CompConv) for m in head.rpn_conv)
    assert [tuple(t.shape) for t in head(feats())[1]] == [(1, 12, SIZE // s, SIZE // s)
                                                          for s in STRIDES]
    assert_trains(head, label=0)

    head = CompConvRPNHead(**{k: v for k, v in rpn_cfg(compconv_cfg=None).items()
                              if k != 'type'})
    assert type(head.rpn_conv) is nn.Conv2d

    with pytest.raises(TypeError, match='compconv_cfg must be None or a dict'):
        MODELS.build(rpn_cfg(compconv_cfg='CompConv'))
    with pytest.raises(KeyError, match="'Nope' is not a registered conv layer"):
        MODELS.build(rpn_cfg(compconv_cfg=dict(type='Nope')))


def test_faster_rcnn_with_compconv_backbone_neck_and_rpn():
    """An mmdet config with the three swapped in builds, trains (loss + backward), predicts."""
    import os.path as osp

    import mmdet
    from mmengine.config import Config
    from mmdet.testing import demo_mm_inputs

    cfg = Config.fromfile(osp.join(osp.dirname(mmdet.__file__),
                                   '.mim/configs/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'))
    model_cfg = cfg.model
    model_cfg.backbone = dict(type='CompConvResNet', depth=18, frozen_stages=1, init_cfg=None)
    model_cfg.neck = dict(type='CompConvFPN', in_channels=[64, 128, 256, 512], out_channels=C,
                          num_outs=5)
    model_cfg.rpn_head.update(type='CompConvRPNHead', in_channels=C, feat_channels=C)
    model_cfg.roi_head.bbox_roi_extractor.out_channels = C
    model_cfg.roi_head.bbox_head.update(in_channels=C, fc_out_channels=C)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(model_cfg)
        packed = demo_mm_inputs(1, [[3, 96, 96]], num_items=[2])
        losses = model(**model.data_preprocessor(packed, True), mode='loss')
        total = sum(v if isinstance(v, torch.Tensor) else sum(v)
                    for k, v in losses.items() if 'loss' in k)
        total.backward()
        for part in (model.backbone.layer4, model.neck, model.rpn_head):
            compconvs = [m for m in part.modules() if isinstance(m, CompConv)]
            assert compconvs and all(p.grad is not None for m in compconvs
                                     for p in m.parameters())
        assert all(p.grad is None for p in model.backbone.layer1.parameters())  # frozen
        model.eval()
        with torch.no_grad():
            results = model(**model.data_preprocessor(packed, False), mode='predict')
    assert len(results) == 1 and 'bboxes' in results[0].pred_instances
