"""Precision as a deployment axis: read-back, int8 quantization, forms per precision, and a
detector evaluated with its backbone + neck in a runtime (tiny models, a few seconds each).

OpenVINO / NNCF tests are skipped when they are not installed (CI installs neither)."""
import copy
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmdet_compconv.deployment import (FORMS, PRECISIONS, calibration_inputs, cpu_isa,
                                       executed_precisions, export_onnx, isa_summary,
                                       load_runtime, model_form, onnxruntime_precisions,
                                       quantize_model, quantized_ops, runtime_model_file,
                                       torch_conv_dtypes, use_runtime_features)
from mmdet_compconv.deployment.evaluation import RuntimeFeatures
from mmdet_compconv.models import DenseDetector
from test_deploy import trained_like
from test_tools import make_tiny_coco

pytest.importorskip('onnxruntime')
ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / 'configs/shapes/faster-rcnn_compconv128-r18_fpn_shapes.py'
SMALL = {  # ResNet-18 of 16 base channels, 32-channel FPN, RPN and RoI heads
    'model.backbone.base_channels': 16, 'model.neck.in_channels': [16, 32, 64, 128],
    'model.neck.out_channels': 32, 'model.rpn_head.in_channels': 32,
    'model.rpn_head.feat_channels': 32, 'model.roi_head.bbox_roi_extractor.out_channels': 32,
    'model.roi_head.bbox_head.in_channels': 32, 'model.roi_head.bbox_head.fc_out_channels': 64}


pytestmark = pytest.mark.usefixtures('mmdet_scope_one_thread')


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """(config, checkpoint, data root): a tiny CompConv Faster R-CNN on 4 images of 64x64."""
    root = tmp_path_factory.mktemp('precision')
    make_tiny_coco(root / 'data')
    data = f'{root}/data/'
    config = root / 'tiny.py'
    config.write_text(f'''
_base_ = {str(CONFIG)!r}
metainfo = dict(classes=('box', 'disc'))
_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
test_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                       dataset=dict(data_root={data!r}, ann_file='ann.json', metainfo=metainfo,
                                    data_prefix=dict(img='images/'), pipeline=_pipeline))
val_dataloader = test_dataloader
test_evaluator = dict(ann_file={data + 'ann.json'!r})
val_evaluator = test_evaluator
model = dict(roi_head=dict(bbox_head=dict(num_classes=2)),
             test_cfg=dict(rcnn=dict(score_thr=0.0)))
''')
    cfg = Config.fromfile(str(config))
    cfg.merge_from_dict(SMALL)
    cfg.dump(str(config))
    model = small_detector(cfg)
    checkpoint = root / 'tiny.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, checkpoint)
    return cfg, checkpoint, root


def small_detector(cfg):
    """The tiny detector, the same weights on every call (those of the tiny checkpoint)."""
    from mmdet_compconv.apis import init_model
    torch.manual_seed(0)
    return trained_like(init_model(cfg))


def rel_err(ref, out) -> float:
    return max(float(np.linalg.norm(np.asarray(r, np.float64) - np.asarray(o, np.float64))
                     / np.linalg.norm(np.asarray(r, np.float64))) for r, o in zip(ref, out))


def test_precisions_and_isa():
    assert PRECISIONS == ('fp32', 'bf16', 'int8')
    assert isinstance(cpu_isa(), list) and isa_summary().startswith('ISA: ')
    assert cpu_isa('/nonexistent') == []


def test_torch_conv_dtypes_read_back_every_form(tiny):
    cfg = tiny[0]
    model = small_detector(cfg)
    x = torch.rand(1, 3, 64, 64)
    for form in ('train', 'deploy', 'export', 'hybrid'):
        net = DenseDetector(model_form(model, form, 0.15), 'backbone').eval()
        assert set(torch_conv_dtypes(lambda: net(x))) == {'float32'}

        def call():
            with torch.autocast('cpu', torch.bfloat16):
                return net(x)
        found = torch_conv_dtypes(call)
        assert set(found) == {'bfloat16'} and sum(found.values()) > 20


def test_forms_are_the_trained_model_in_fp32_and_in_bf16(tiny):
    """Every form equals the trained model in fp32 (relative max error <= 2e-5); in bf16
    (modules and input cast), its error against the fp32 trained model stays within 2x the
    train form's own bf16 error + 0.01 (relative norm error of each output), i.e. no form
    amplifies bf16 rounding."""
    model = small_detector(tiny[0])
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = DenseDetector(model, 'tensor').eval()(x)
        bf16 = DenseDetector(copy.deepcopy(model).to(torch.bfloat16), 'tensor').eval()
        base = rel_err(ref, [t.float() for t in bf16(x.to(torch.bfloat16))])
    assert base < 0.05
    for form in ('deploy', 'export', 'hybrid'):
        form_model = model_form(model, form, 0.15)
        net = DenseDetector(form_model, 'tensor').eval()
        with torch.no_grad():
            out = net(x)
            scale = max(float(r.abs().max()) for r in ref)
            assert max(float((a - b).abs().max()) for a, b in zip(ref, out)) <= 2e-5 * scale
            low = DenseDetector(copy.deepcopy(form_model).to(torch.bfloat16), 'tensor').eval()
            err = rel_err(ref, [t.float() for t in low(x.to(torch.bfloat16))])
        assert err <= 2 * base + 0.01, (form, err, base)


def test_hybrid_form_collapses_every_backbone_1x1(tiny):
    from mmdet_compconv.deployment import ExportCompConv
    cfg = Config(copy.deepcopy(tiny[0].to_dict()))
    cfg.model.backbone.depth = 50  # Bottlenecks: 1x1 CompConvs
    cfg.model.neck.in_channels = [64, 128, 256, 512]
    model = small_detector(cfg)
    hybrid = model_form(model, 'hybrid', 0.15)
    split = [m for m in hybrid.backbone.modules() if isinstance(m, ExportCompConv)]
    assert split and all(m.weights[0].shape[-1] == 3 for m in split)
    export = model_form(model, 'export', 0.15)
    assert any(m.weights[0].shape[-1] == 1 for m in export.backbone.modules()
               if isinstance(m, ExportCompConv))
    assert 'hybrid' in FORMS
    with pytest.raises(ValueError, match='no backbone'):
        model_form(torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1)).eval(), 'hybrid', 0.15)


@pytest.fixture(scope='module')
def exported(tiny, tmp_path_factory):
    """(float .onnx of the tiny detector's backbone+neck, calibration inputs, fp32 outputs)."""
    cfg = tiny[0]
    model = small_detector(cfg)
    tmp = tmp_path_factory.mktemp('exported')
    calib = calibration_inputs(cfg, str(tiny[2] / 'data' / 'images'), 4)
    path = runtime_model_file(model, 'backbone+neck', 'export', 0.15, 'onnxruntime', 'fp32',
                              str(tmp / 'float.onnx'), calib[0])
    with torch.no_grad():
        ref = DenseDetector(model, 'backbone+neck').eval()(torch.from_numpy(calib[0]))
    return path, calib, [t.numpy() for t in ref], tmp


def test_calibration_inputs_go_through_the_test_pipeline(tiny):
    cfg, _, root = tiny
    calib = calibration_inputs(cfg, str(root / 'data'), 3)
    assert len(calib) == 3 and calib[0].shape == (1, 3, 64, 64) and calib[0].dtype == np.float32
    assert abs(float(calib[0].mean())) < 3  # normalised by the data preprocessor
    assert calibration_inputs(cfg, str(root / 'data'), 1, size=(32, 96))[0].shape == \
        (1, 3, 32, 96)
    assert len(calibration_inputs(cfg, str(root / 'data'), 10)) == 4  # the folder has 4
    with pytest.raises(ValueError, match='at least 1'):
        calibration_inputs(cfg, str(root / 'data'), 0)
    no_resize = Config(copy.deepcopy(cfg.to_dict()))
    no_resize.test_dataloader.dataset.pipeline = [
        t for t in no_resize.test_dataloader.dataset.pipeline if t['type'] != 'Resize']
    with pytest.raises(ValueError, match='needs a Resize'):
        calibration_inputs(no_resize, str(root / 'data'), 1, size=(32, 32))
    with pytest.raises(FileNotFoundError):
        calibration_inputs(cfg, str(root / 'missing'), 1)


def test_onnxruntime_int8_round_trip(exported):
    path, calib, ref, tmp = exported
    out = quantize_model(path, 'onnxruntime', calib, str(tmp / 'ort_int8.onnx'))
    assert quantized_ops(out) > 0 and quantized_ops(path) == 0
    run = load_runtime(out, 'onnxruntime', 1, precision='int8')
    found = executed_precisions(run)
    assert found.startswith('Conv int8') and 'float' not in found, found
    assert rel_err(ref, run(calib[0])) < 0.2
    assert rel_err(ref, load_runtime(path, 'onnxruntime', 1)(calib[0])) < 1e-5


def test_openvino_precisions_read_back(exported):
    pytest.importorskip('openvino')
    pytest.importorskip('nncf')
    path, calib, ref, tmp = exported
    run = load_runtime(path, 'openvino', 1, precision='fp32')
    assert executed_precisions(run) == f'Convolution f32 {executed_precisions(run).split()[-1]}'
    assert rel_err(ref, run(calib[0])) < 1e-5
    bf16 = load_runtime(path, 'openvino', 1, precision='bf16')
    expected = 'bf16' if 'AVX512_BF16' in cpu_isa() or 'AMX-BF16' in cpu_isa() else 'f32'
    assert executed_precisions(bf16).startswith(f'Convolution {expected}')
    assert rel_err(ref, bf16(calib[0])) < 0.05  # bf16 keeps 8 bits of mantissa
    out = quantize_model(path, 'openvino', calib, str(tmp / 'ov_int8.xml'))
    int8 = load_runtime(out, 'openvino', 1, precision='int8')
    assert any(p in executed_precisions(int8) for p in ('u8', 'i8'))
    assert rel_err(ref, int8(calib[0])) < 0.2


def test_openvino_int8_of_a_dynamic_export_is_quantized_at_a_static_shape(exported):
    """OpenVINO 2026.4.1 + NNCF 3.4.0 gave wrong int8 outputs for dynamic-shape exports."""
    pytest.importorskip('openvino')
    pytest.importorskip('nncf')
    import onnx
    path, calib, ref, tmp = exported
    dynamic = str(tmp / 'dynamic.onnx')
    proto = onnx.load(path)
    for i, name in ((0, 'batch'), (2, 'height'), (3, 'width')):
        proto.graph.input[0].type.tensor_type.shape.dim[i].dim_param = name
    onnx.save(proto, dynamic)
    with pytest.raises(ValueError, match='several shapes'):
        quantize_model(dynamic, 'openvino', [calib[0], calib[0][..., :32]],
                       str(tmp / 'bad.xml'))
    out = quantize_model(dynamic, 'openvino', calib, str(tmp / 'dyn_int8.xml'))
    assert rel_err(ref, load_runtime(out, 'openvino', 1, precision='int8')(calib[0])) < 0.2


def test_load_runtime_and_quantize_errors(exported):
    path, calib, ref, tmp = exported
    with pytest.raises(ValueError, match='precision must be one of'):
        load_runtime(path, 'onnxruntime', 1, precision='fp16')
    with pytest.raises(ValueError, match='no bf16 convolution kernels'):
        load_runtime(path, 'onnxruntime', 1, precision='bf16')
    with pytest.raises(ValueError, match='OpenVINO model'):
        load_runtime(str(tmp / 'x.xml'), 'onnxruntime', 1)
    with pytest.raises(ValueError, match='needs a quantized model'):
        load_runtime(path, 'onnxruntime', 1, precision='int8')
    with pytest.raises(ValueError, match='runtime must be one of'):
        load_runtime(path, 'tensorrt', 1)
    int8 = quantize_model(path, 'onnxruntime', calib[:1], str(tmp / 'q.onnx'))
    with pytest.raises(ValueError, match="precision='int8'"):
        load_runtime(int8, 'onnxruntime', 1)
    with pytest.raises(ValueError, match='already quantized'):
        quantize_model(int8, 'onnxruntime', calib, str(tmp / 'qq.onnx'))
    with pytest.raises(ValueError, match='runtime must be one of'):
        quantize_model(path, 'torch', calib, str(tmp / 'q.pt'))
    with pytest.raises(ValueError, match=r'written as \.xml'):
        quantize_model(path, 'openvino', calib, str(tmp / 'q.onnx'))
    with pytest.raises(ValueError, match='at least one calibration input'):
        quantize_model(path, 'onnxruntime', [], str(tmp / 'q2.onnx'))
    with pytest.raises(ValueError, match='needs calibration inputs'):
        runtime_model_file(torch.nn.Module(), 'backbone', 'export', 0.15, 'onnxruntime', 'int8',
                           str(tmp / 'z.onnx'), calib[0])
    assert onnxruntime_precisions({'Conv': 2}) == {'Conv': {'float': 2}}


def test_runtime_features_replace_extract_feat(tiny, exported):
    path, calib, ref, tmp = exported
    model = small_detector(tiny[0])
    x = torch.from_numpy(np.concatenate([calib[0], calib[1]]))  # a batch of 2
    with torch.no_grad():
        expected = model.extract_feat(x)
        use_runtime_features(model, load_runtime(path, 'onnxruntime', 1), 'backbone+neck')
        got = model.extract_feat(x)
    assert isinstance(model.backbone, RuntimeFeatures) and len(got) == len(expected) == 5
    for a, b in zip(expected, got):
        assert float((a - b).abs().max()) <= 1e-4 * float(a.abs().max())
    with pytest.raises(RuntimeError, match='expects 4'):  # a backbone+neck file as 'backbone'
        use_runtime_features(small_detector(tiny[0]), load_runtime(path, 'onnxruntime', 1),
                             'backbone').extract_feat(x)
    with pytest.raises(ValueError, match='heads stay in PyTorch'):
        use_runtime_features(small_detector(tiny[0]), lambda a: [a], 'tensor')
    no_neck = torch.nn.Module()
    no_neck.backbone = torch.nn.Identity()
    with pytest.raises(ValueError, match='has no neck'):
        use_runtime_features(no_neck, lambda a: [a], 'backbone+neck')


def load_tool(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_test_runtime_reproduces_runner_test(tiny, tmp_path, capsys):
    """fp32 in ONNX Runtime gives the mAP of the PyTorch model under the same Runner.test."""
    from mmengine.runner import Runner
    cfg, checkpoint, root = tiny
    torch_cfg = Config(copy.deepcopy(cfg.to_dict()))
    torch_cfg.work_dir, torch_cfg.load_from = str(tmp_path / 'torch'), str(checkpoint)
    expected = Runner.from_cfg(torch_cfg).test()
    tool = load_tool('test_runtime', 'tools/deployment/test_runtime.py')
    config = str(root / 'tiny.py')
    metrics = tool.main([config, str(checkpoint), '--runtime', 'onnxruntime', '--threads', '1',
                         '--work-dir', str(tmp_path / 'ort')])
    assert metrics['coco/bbox_mAP'] == pytest.approx(expected['coco/bbox_mAP'], abs=1e-3)
    assert metrics['coco/bbox_mAP_50'] == pytest.approx(expected['coco/bbox_mAP_50'], abs=1e-3)
    out = capsys.readouterr().out
    assert 'onnxruntime fp32' in out and 'executed: Conv float' in out and 'coco/bbox_mAP' in out
    # int8 straight from the checkpoint, and from a file written by tools/deployment/quantize.py
    metrics = tool.main([config, str(checkpoint), '--runtime', 'onnxruntime', '--precision',
                         'int8', '--calib', str(root / 'data'), '--threads', '1', '--work-dir',
                         str(tmp_path / 'int8')])
    assert 'coco/bbox_mAP' in metrics and 'executed: Conv int8' in capsys.readouterr().out
    quantize = load_tool('quantize', 'tools/deployment/quantize.py')
    out_file = quantize.main([config, str(checkpoint), '--runtime', 'onnxruntime', '--calib',
                              str(root / 'data'), '--calib-num', '2', '--threads', '1',
                              '--out', str(tmp_path / 'q' / 'int8.onnx')])
    printed = capsys.readouterr().out
    assert 'onnxruntime int8' in printed and 'executed (read back): Conv int8' in printed
    metrics = tool.main([config, str(checkpoint), '--runtime', 'onnxruntime', '--precision',
                         'int8', '--model', out_file, '--threads', '1', '--work-dir',
                         str(tmp_path / 'file')])
    assert 'coco/bbox_mAP' in metrics


def test_tool_argument_errors(tiny):
    cfg, checkpoint, root = tiny
    config = str(root / 'tiny.py')
    tool = load_tool('test_runtime', 'tools/deployment/test_runtime.py')
    for args in (['--runtime', 'onnxruntime', '--precision', 'bf16'],
                 ['--runtime', 'onnxruntime', '--precision', 'int8']):
        with pytest.raises(SystemExit):
            tool.parse_args([config, str(checkpoint)] + args)
    quantize = load_tool('quantize', 'tools/deployment/quantize.py')
    for args in (['--runtime', 'openvino', '--out', 'x.onnx'],
                 ['--runtime', 'onnxruntime', '--out', 'x.xml'],
                 ['--runtime', 'onnxruntime', '--out', 'x.onnx', '--calib-num', '0']):
        with pytest.raises(SystemExit):
            quantize.parse_args([config, str(checkpoint), '--calib', str(root)] + args)
    bench = load_tool('benchmark_latency', 'tools/analysis_tools/benchmark_latency.py')
    with pytest.raises(SystemExit):  # int8 in a runtime needs calibration images
        bench.parse_args([config, '--runtime', 'onnxruntime', '--precision', 'int8'])


@pytest.mark.parametrize('runtime', ['torch', 'onnxruntime', 'openvino'])
def test_benchmark_latency_tables_per_precision(tiny, runtime, capsys):
    if runtime == 'openvino':
        pytest.importorskip('openvino')
        pytest.importorskip('nncf')
    cfg, checkpoint, root = tiny
    bench = load_tool('benchmark_latency', 'tools/analysis_tools/benchmark_latency.py')
    options = [f'{k}={v!r}'.replace(' ', '') for k, v in SMALL.items()]
    bench.main([str(CONFIG), '--runtime', runtime, '--sizes', '64x64', '--modes', 'backbone',
                '--repeats', '1', '--warmup', '0', '--threads', '1', '--precision', 'fp32',
                'bf16', 'int8', '--calib', str(root / 'data'), '--calib-num', '2',
                '--cfg-options'] + options)
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith('| 64x64 |')]
    precisions = [r.split('|')[2].strip() for r in rows]
    headers = [ln for ln in out.splitlines() if ln.startswith('# ') and '.py on ' in ln]
    assert len(headers) == len(set(precisions)) and all('ISA: ' in h for h in headers)
    if runtime == 'torch':
        assert precisions == ['fp32', 'bf16'] and 'int8: not offered in PyTorch' in out
        assert 'convolution outputs by dtype' in out and 'bfloat16' in out  # read back
        assert len(rows[1].split('|')) == 2 + 3 + 6 + 1  # 3 sides x (autocast, bf16)
    elif runtime == 'onnxruntime':
        assert precisions == ['fp32', 'int8'] and 'bf16: not offered by ONNX Runtime' in out
        assert 'CompConv hybrid: Conv int8' in out
    else:
        assert precisions == ['fp32', 'bf16', 'int8']
        assert 'vanilla: Convolution f32' in out and ('u8' in out or 'i8' in out)


@pytest.mark.parametrize('runtime,precision', [('onnxruntime', 'fp32'), ('openvino', 'fp32'),
                                               ('openvino', 'bf16')])
def test_runtime_forms_are_the_trained_model(tiny, tmp_path, runtime, precision):
    """The export and hybrid forms under a runtime: fp32 within 1e-5 (relative norm error of
    each output) of the trained model in PyTorch; bf16 within 2x the train form's own bf16
    error under the same runtime + 0.01."""
    if runtime == 'openvino':
        pytest.importorskip('openvino')
    model = small_detector(tiny[0])
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = [t.numpy() for t in DenseDetector(model, 'tensor').eval()(x)]
    errs = {}
    for form in ('train', 'export', 'hybrid'):
        path = runtime_model_file(model, 'tensor', form, 0.15, runtime, precision,
                                  str(tmp_path / f'{form}.onnx'), x.numpy())
        errs[form] = rel_err(ref, load_runtime(path, runtime, 1, precision=precision)(x.numpy()))
    if precision == 'fp32':
        assert max(errs.values()) < 1e-5, errs
    else:
        assert errs['train'] < 0.05 and all(e <= 2 * errs['train'] + 0.01
                                            for e in errs.values()), errs
