"""ONNX export of every form of CompConv models, checked with ONNX Runtime against PyTorch."""
import copy
import importlib.util
import re
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from mmcv.cnn import fuse_conv_bn
from mmdet.structures import DetDataSample

from mmdet_compconv import CompConv, DeployedCompConv, switch_to_deploy
from mmdet_compconv.cnn.functional import is_exporting
from mmdet_compconv.deployment import (ExportCompConv, dense_export_conv, export_onnx,
                                       max_abs_error, op_counts, run_onnxruntime, to_export_form)
from mmdet_compconv.models import CompConvResNet, DenseDetector
from test_deploy import trained_like  # random BN statistics and affines, some gammas 0

pytest.importorskip('onnxruntime')
ROOT = Path(__file__).resolve().parents[1]
SHUFFLE_OPS = ('Transpose', 'Gather', 'GatherElements', 'ScatterND')


def check_onnx(model: nn.Module, x: torch.Tensor, path: Path, dynamo: bool, opset: int = 17,
               dynamic: bool = False, atol: float = 1e-4) -> dict:
    """Export, run with ONNX Runtime, compare with PyTorch; returns the op counts."""
    with torch.no_grad():
        ref = model(x)
    ref = (ref, ) if torch.is_tensor(ref) else ref
    export_onnx(model, x, str(path), dynamo=dynamo, opset=opset, dynamic=dynamic)
    scale = max(r.abs().max().item() for r in ref)
    assert max_abs_error(ref, run_onnxruntime(str(path), x)) <= atol * max(1.0, scale)
    return op_counts(str(path))


BLOCKS = [  # c_in, c_out, k, stride, kwargs: depths 2 and 3, strided, odd C_out, full tail
    (256, 256, 3, 1, {}),
    (96, 77, 3, 2, dict(c0=16, tail='pointwise')),
    (64, 64, 3, 1, dict(c0=8, tail='full', bias=True)),
]


@pytest.mark.parametrize('c_in,c_out,k,s,kwargs,dynamo', [b + (False, ) for b in BLOCKS] +
                         [b + (True, ) for b in BLOCKS[1:]])
def test_train_and_deployed_forms_export(tmp_path, c_in, c_out, k, s, kwargs, dynamo):
    """The issue's case: a deployed CompConv + BN + ReLU exported with TorchScript gave an
    IndexError at opset 17 and wrong outputs at 18 (its out= writes were dropped)."""
    conv = CompConv(c_in, c_out, k, s, k // 2, **dict(dict(bias=False), **kwargs))
    train = trained_like(nn.Sequential(conv, nn.BatchNorm2d(c_out), nn.ReLU()))
    deployed = switch_to_deploy(copy.deepcopy(train))
    assert isinstance(deployed[0], DeployedCompConv)
    x = torch.randn(1, c_in, 9, 7)
    check_onnx(train, x, tmp_path / 'train.onnx', dynamo)
    for opset in (18, ) if dynamo else (17, 18):  # dynamo implements opset >= 18 only
        ops = check_onnx(deployed, x, tmp_path / f'deployed{opset}.onnx', dynamo, opset)
        assert 'ScatterND' not in ops and ops['Gather'] == 1  # one Concat + Gather, no writes


def test_deployed_form_exports_with_dynamic_shape(tmp_path):
    model = trained_like(nn.Sequential(CompConv(64, 64, 3, 2, 1, c0=16), nn.BatchNorm2d(64)))
    deployed = switch_to_deploy(copy.deepcopy(model))
    path = tmp_path / 'dyn.onnx'
    export_onnx(deployed, torch.randn(1, 64, 8, 8), str(path), dynamic=True)
    x = torch.randn(2, 64, 11, 6)
    with torch.no_grad():
        assert max_abs_error([model(x)], run_onnxruntime(str(path), x)) < 1e-4


def test_eager_forward_is_unchanged_outside_export(monkeypatch):
    assert not is_exporting()
    conv = trained_like(CompConv(64, 64, 3, padding=1)).eval()
    m = DeployedCompConv(conv)

    def not_here(*args):
        raise AssertionError('the export path ran outside an export')

    monkeypatch.setattr(DeployedCompConv, '_assemble_for_export', not_here)
    x = torch.rand(1, 64, 4, 4)
    with torch.no_grad():
        assert torch.allclose(m(x), conv(x), atol=1e-5)  # the out= path


@pytest.mark.parametrize('c_in,c_out,k,s,kwargs', BLOCKS)
def test_export_compconv_takes_any_input_order(c_in, c_out, k, s, kwargs):
    conv = CompConv(c_in, c_out, k, s, k // 2, **kwargs)
    norm = nn.BatchNorm2d(c_out)
    ref = trained_like(nn.Sequential(conv, norm))
    x = torch.randn(2, c_in, 9, 7)
    perm = torch.randperm(c_in, generator=torch.Generator().manual_seed(1))
    xp = torch.empty_like(x)
    xp[:, perm] = x  # x in the physical order perm
    loose = ExportCompConv(conv, norm, perm).eval()
    tight = ExportCompConv(conv, norm, perm, materialize=True).eval()
    with torch.no_grad():
        y = ref(x)
        assert torch.allclose(tight(xp), y, atol=1e-4)
        assert torch.allclose(loose(xp)[:, loose.out_perm], y, atol=1e-4)
    assert tight.out_perm is None
    # a permuted input splits identity slices into runs of consecutive channels (slices, no
    # gather) that cover each slice's physical channels exactly
    assert any(len(runs) > 1 for runs in loose.slice_runs)
    covered = [c for runs in loose.slice_runs for lo, hi in runs for c in range(lo, hi)]
    assert len(covered) == len(set(covered))
    assert all(lo < hi and (i == 0 or runs[i - 1][1] < lo)
               for runs in loose.slice_runs for i, (lo, hi) in enumerate(runs))


def test_export_form_folds_a_norm_only_into_the_compconv_it_follows():
    """A CompConv outside the known chains keeps its consuming BN: folded into it, never
    into an earlier plain conv (mmcv's fuse_conv_bn, by registration order, would)."""
    model = trained_like(nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                                       CompConv(16, 16, 3, padding=1), nn.BatchNorm2d(16)))
    x = torch.randn(1, 8, 6, 6)
    with torch.no_grad():
        y = model(x)
        assert torch.allclose(to_export_form(model)(x), y, atol=1e-4)
    assert isinstance(model[3], nn.Identity) and not isinstance(model[2], CompConv)


def test_export_compconv_errors():
    conv = CompConv(16, 16, 3, padding=1, c0=4)
    with pytest.raises(ValueError, match='permutation of 16 channels'):
        ExportCompConv(conv, in_perm=torch.zeros(16, dtype=torch.long))
    with pytest.raises(ValueError, match='depth-0 CompConv is a plain convolution'):
        ExportCompConv(CompConv(16, 16, 3, padding=1, depth=0))
    deployed = copy.deepcopy(conv).switch_to_deploy()
    with pytest.raises(TypeError, match='before switch_to_deploy'):
        ExportCompConv(deployed)
    with pytest.raises(TypeError, match='before switch_to_deploy'):
        dense_export_conv(deployed)
    grouped = nn.Conv2d(4, 4, 3, padding=1, groups=2)
    with pytest.raises(TypeError, match='cannot fold a channel permutation'):
        dense_export_conv(grouped, None, torch.tensor([1, 0, 2, 3]))
    x = torch.rand(1, 4, 5, 5)
    with torch.no_grad():  # nothing to permute: a grouped conv folds its norm as it is
        assert torch.allclose(dense_export_conv(grouped)(x), grouped(x), atol=1e-6)


RESNETS = [  # kwargs, Gathers allowed in the export form (one per uncollapsed last conv)
    (dict(depth=50, compconv_layers=None), {}, 0),  # all block convs
    (dict(depth=50, compconv_layers=('conv2', )), {}, 0),  # 3x3 only
    (dict(depth=50, compconv_layers=None), dict(collapse_above=None), 16),
    (dict(depth=18, compconv_layers=None), {}, 8),
]


@pytest.mark.parametrize('kwargs,form_kwargs,gathers', RESNETS)
def test_export_form_of_resnets(tmp_path, kwargs, form_kwargs, gathers):
    model = trained_like(CompConvResNet(base_channels=8, compconv_cfg=dict(type='CompConv', c0=8),
                                        **kwargs))
    x = torch.randn(1, 3, 32, 32)
    form = to_export_form(copy.deepcopy(model), **form_kwargs)
    assert not any(isinstance(m, CompConv) for m in form.modules())
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in form.modules())
    with torch.no_grad():
        for a, b in zip(model(x), form(x)):
            assert (a - b).abs().max() <= 1e-4 * max(1.0, a.abs().max().item())
    ops = check_onnx(form, x, tmp_path / 'form.onnx', dynamo=False)
    assert 'Transpose' not in ops and 'Reshape' not in ops
    assert ops.get('Gather', 0) == gathers
    exported = [m for m in form.modules() if isinstance(m, ExportCompConv)]
    assert ops.get('BatchNormalization', 0) == len(exported)  # each CompConv's folded BN
    # every CompConv is one Concat (plus one per sub-conv input cat(B_i, A_i) at depth > 1)
    assert ops['Concat'] == sum(m.plan.depth for m in exported)


def test_export_form_errors():
    model = CompConvResNet(depth=18, base_channels=8)
    with pytest.raises(ValueError, match='model.eval'):
        to_export_form(model.train())
    with pytest.raises(TypeError, match='before switch_to_deploy'):
        to_export_form(switch_to_deploy(copy.deepcopy(model).eval(), None))
    with pytest.raises(TypeError, match='bare CompConv'):
        to_export_form(CompConv(8, 8, 3, padding=1).eval())
    with pytest.raises(ValueError, match='collapse_above'):
        to_export_form(model.eval(), collapse_above=2)


def build(config: str, **options):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules()
    cfg = Config.fromfile(str(ROOT / 'configs' / config))
    cfg.merge_from_dict(dict(options, **{'model.backbone.init_cfg': None}))
    cfg.model.pop('data_preprocessor')
    model = MODELS.build(cfg.model)
    model.init_weights()
    return trained_like(model)


SMALL = {  # test size: ResNet-18 of 16 base channels, 32-channel FPN and dense head
    'model.backbone.depth': 18, 'model.backbone.base_channels': 16,
    'model.neck.in_channels': [16, 32, 64, 128], 'model.neck.out_channels': 32}
SMALL_RPN = dict(SMALL, **{'model.rpn_head.in_channels': 32, 'model.rpn_head.feat_channels': 32})
SMALL_RETINA = dict(SMALL, **{'model.bbox_head.in_channels': 32,
                              'model.bbox_head.feat_channels': 32})


@pytest.mark.parametrize('config,form,dynamo', [
    ('shapes/retinanet_compconv128-r18_fpn_shapes.py', 'train', False),
    ('shapes/retinanet_compconv128-r18_fpn_shapes.py', 'deploy', False),
    ('shapes/retinanet_compconv128-r18_fpn_shapes.py', 'deploy', True),
    ('shapes/faster-rcnn_compconv128-r18_fpn_shapes.py', 'export', True),
    ('compconv/faster-rcnn_compconv128-r50_compconv128-fpn_1x_coco.py', 'export', False),
])
def test_whole_detector_tensor_mode(tmp_path, config, form, dynamo):
    """Backbone + neck + dense head (CompConv FPN and RPN head in the Faster R-CNN config)."""
    model = build(config, **(SMALL_RETINA if 'retinanet' in config else SMALL_RPN))
    if form == 'deploy':
        model = fuse_conv_bn(switch_to_deploy(copy.deepcopy(model)))
    elif form == 'export':
        model = to_export_form(copy.deepcopy(model))
    net = DenseDetector(model, 'tensor').eval()
    x = torch.rand(1, 3, 64, 96)
    ops = check_onnx(net, x, tmp_path / 'det.onnx', dynamo)
    with torch.no_grad():
        assert len(net.output_names(x)) == len(net(x))
    if form == 'export' and 'r50' in config:
        # the CompConv FPN's laterals share one order through the top-down sums; its 4 output
        # convs write the logical order (the RoI head reads them too); the RPN head's conv
        # order goes into rpn_cls/rpn_reg; the 8 BasicBlocks' conv2 (uncollapsed CompConvs
        # before a residual sum) gather
        assert ops.get('Gather', 0) == 8 + 4 and 'Transpose' not in ops


@pytest.mark.parametrize('config', [
    'compconv/faster-rcnn_compconv128-r50_compconv128-fpn_1x_coco.py',
    'shapes/faster-rcnn_compconv128-r18_fpn_shapes.py',
])
def test_export_form_of_a_two_stage_detector_keeps_what_every_head_reads(config):
    """The neck's outputs feed the RPN head *and* the RoI head: its order must not be left
    permuted for the RPN head alone (review item 1: FPN outputs off by up to 102)."""
    options = dict(SMALL_RPN, **{'model.neck.type': 'CompConvFPN',
                                 'model.rpn_head.type': 'CompConvRPNHead',
                                 'model.roi_head.bbox_roi_extractor.out_channels': 32,
                                 'model.roi_head.bbox_head.in_channels': 32,
                                 'model.test_cfg.rcnn.score_thr': 0.0})
    torch.manual_seed(0)
    model = build(config, **options)
    form = to_export_form(copy.deepcopy(model))
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        for part in ('backbone+neck', 'tensor'):
            for a, b in zip(DenseDetector(model, part)(x), DenseDetector(form, part)(x)):
                assert (a - b).abs().max() <= 1e-4 * max(1.0, a.abs().max().item()), part
        sample = DetDataSample(metainfo=dict(img_shape=(64, 96), ori_shape=(64, 96),
                                             scale_factor=(1.0, 1.0)))
        ref = model.predict(x, [sample.clone()])[0].pred_instances
        out = form.predict(x, [sample.clone()])[0].pred_instances
    # random weights give near-tied scores (0.1985, 0.1983, ...) whose order may swap: match
    # each detection to its nearest one of the same label instead of comparing by position
    assert len(ref) > 0 and len(ref) == len(out)
    assert torch.equal(ref.labels.sort().values, out.labels.sort().values)
    dist = torch.cdist(ref.bboxes, out.bboxes, p=float('inf'))
    dist[ref.labels[:, None] != out.labels[None, :]] = float('inf')
    nearest = dist.min(1)
    assert nearest.values.max() <= 1e-3
    assert torch.allclose(ref.scores, out.scores[nearest.indices], atol=1e-4)


@pytest.mark.parametrize('compconv', [False, True])
def test_export_form_of_resnext(compconv):
    """A ResNeXt block's grouped conv2 takes no channel permutation (review item 10: any
    ResNeXt, even a vanilla one, raised a TypeError)."""
    from mmdet.models.backbones import ResNeXt
    from mmdet_compconv.models import compconv_like
    model = ResNeXt(depth=50, groups=4, base_width=4, base_channels=16)
    if compconv:  # the 1x1 convs as CompConvs (a grouped conv2 cannot be one)
        for m in model.modules():
            if hasattr(m, 'conv3'):
                m.conv1 = compconv_like(m.conv1, dict(type='CompConv', c0=8))
                m.conv3 = compconv_like(m.conv3, dict(type='CompConv', c0=8))
    trained_like(model)
    model.eval()
    form = to_export_form(copy.deepcopy(model))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(model(x), form(x)):
            assert (a - b).abs().max() <= 1e-4 * max(1.0, a.abs().max().item())


def test_dense_detector_errors():
    det = nn.Module()
    det.backbone = CompConvResNet(depth=18, base_channels=8)
    with pytest.raises(ValueError, match="part must be one of"):
        DenseDetector(det, 'predict')
    with pytest.raises(ValueError, match='needs a neck'):
        DenseDetector(det, 'backbone+neck')
    det.neck = nn.Identity()
    with pytest.raises(ValueError, match='needs a dense head'):
        DenseDetector(det, 'tensor')
    with pytest.raises(ValueError, match='eval mode'):
        export_onnx(det.backbone.train(), torch.rand(1, 3, 32, 32), '/nonexistent/x.onnx')


def test_export_onnx_names_the_exporter_that_failed(tmp_path):
    class Bad(nn.Module):
        def forward(self, x):
            return torch.linalg.eigh(x)[0]  # no ONNX op

    with pytest.raises(RuntimeError, match='TorchScript ONNX exporter .*linalg_eigh'):
        export_onnx(Bad().eval(), torch.rand(3, 3), str(tmp_path / 'bad.onnx'))


def load_tool(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def options(small: dict) -> list:
    return [f'{k}={v!r}'.replace(' ', '') for k, v in small.items()]


def test_export_onnx_tool(tmp_path, capsys):
    tool = load_tool('export_onnx', 'tools/deployment/export_onnx.py')
    config = str(ROOT / 'configs/shapes/faster-rcnn_compconv128-r18_fpn_shapes.py')
    err = tool.main([config, '--shape', '64', '96', '--dynamic', '--out',
                     str(tmp_path / 'frcnn.onnx'), '--cfg-options'] + options(SMALL_RPN))
    out = capsys.readouterr().out
    assert err < 1e-3
    assert 'input (1, 3, 64, 96), 10 outputs, max abs error vs the model as loaded' in out
    assert 'input (2, 3, 96, 128), 10 outputs' in out  # the dynamic size
    assert 'Transpose' not in out.split('ops: ')[1] and 'ops ONNX Runtime runs: ' in out
    with pytest.raises(SystemExit, match='at least 32'):
        tool.main([config, '--shape', '16', '96'])


def test_export_onnx_tool_compares_with_the_model_as_loaded(tmp_path, monkeypatch):
    """Review item 1: the tool compared the runtime with the transformed model, so a wrong
    export form passed; now a form that changes the outputs fails the check."""
    tool = load_tool('export_onnx', 'tools/deployment/export_onnx.py')
    config = str(ROOT / 'configs/compconv/faster-rcnn_compconv128-r50_compconv128-fpn_1x_coco.py')
    args = [config, '--shape', '64', '64', '--part', 'backbone+neck', '--out',
            str(tmp_path / 'n.onnx'), '--cfg-options'] + options(SMALL_RPN)
    assert tool.main(args) < 1e-3
    real = tool.model_form

    def scrambled(model, form, collapse_above):  # a form whose FPN channels come out permuted
        out = real(model, form, collapse_above)
        out.neck.fpn_convs[0].conv.gather = out.neck.fpn_convs[0].conv.gather.flip(0)
        return out

    monkeypatch.setattr(tool, 'model_form', scrambled)
    with pytest.raises(SystemExit, match='ONNX Runtime differs from the model by'):
        tool.main(args)


def test_export_onnx_tool_refuses_a_checkpoint_that_does_not_fit(tmp_path):
    """Review item 14: a checkpoint that does not fit the config loaded non-strictly and the
    random CompConv weights were exported with exit 0."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    tool = load_tool('export_onnx', 'tools/deployment/export_onnx.py')
    config = str(ROOT / 'configs/shapes/faster-rcnn_compconv128-r18_fpn_shapes.py')
    vanilla = Config.fromfile(str(ROOT / 'configs/shapes/faster-rcnn_r18_fpn_shapes.py'))
    torch.save({'state_dict': MODELS.build(vanilla.model).state_dict()}, tmp_path / 'v.pth')
    args = [config, str(tmp_path / 'v.pth'), '--shape', '64', '64', '--out',
            str(tmp_path / 'x.onnx')]
    with pytest.raises(RuntimeError, match='(?s)unexpected key in source state_dict: '
                       'backbone.layer1.0.conv1.weight.*missing keys in source state_dict'):
        tool.main(args)
    assert not (tmp_path / 'x.onnx').exists()


def test_export_onnx_tool_dynamic_at_the_smallest_size(tmp_path, capsys):
    """Review item 15: --dynamic --shape 64 32 crashed (its second check had width 0)."""
    tool = load_tool('export_onnx', 'tools/deployment/export_onnx.py')
    config = str(ROOT / 'configs/shapes/retinanet_compconv128-r18_fpn_shapes.py')
    assert tool.main([config, '--shape', '64', '32', '--dynamic', '--out',
                      str(tmp_path / 'r.onnx'), '--cfg-options'] + options(SMALL_RETINA)) < 1e-3
    assert 'input (2, 3, 96, 64)' in capsys.readouterr().out


@pytest.mark.parametrize('runtime', ['onnxruntime', 'openvino'])
def test_benchmark_latency_runtime_table(capsys, runtime):
    pytest.importorskip(runtime)
    bench = load_tool('benchmark_latency', 'tools/analysis_tools/benchmark_latency.py')
    config = str(ROOT / 'configs/shapes/retinanet_compconv128-r18_fpn_shapes.py')
    levels = ['--ort-levels', 'all', 'extended'] if runtime == 'onnxruntime' else []
    bench.main([config, '--runtime', runtime, '--runtime-forms', 'export', 'train', '--sizes',
                '64x64', '--modes', 'backbone', 'tensor', '--repeats', '1', '--warmup', '0',
                '--threads', '1', '--profile'] + levels + ['--cfg-options'] +
               options(SMALL_RETINA))
    out = capsys.readouterr().out
    columns = 3 * (2 if levels else 1)  # vanilla, CompConv export, CompConv train (x levels)
    rows = [ln for ln in out.splitlines() if ln.startswith('| 64x64 |')]
    assert [r.split('|')[3].strip() for r in rows] == ['backbone', 'tensor']
    for row in rows:
        cells = [c.strip() for c in row.strip('|').split('|')]
        assert len(cells) == 3 + columns + 1 and all(float(c) >= 0 for c in cells[3:-1])
        assert re.fullmatch(r'\*\*\d+\.\d\dx\*\*', cells[-1])
    assert out.count('where the time goes') == 2 * columns and '| Conv' in out
    with pytest.raises(SystemExit):
        bench.main([config, '--runtime', runtime, '--modes', 'predict'])
