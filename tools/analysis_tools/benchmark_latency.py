"""Latency of a CompConv detector against its vanilla twin, measured in one process.

The vanilla twin is the same config with every CompConv part swapped for mmdet's own
(``CompConvResNet`` -> ``ResNet``, ``CompConvFPN`` -> ``FPN``, ``CompConvRPNHead`` ->
``RPNHead``, ``conv_cfg=dict(type='CompConv')`` -> ``None``). Each side runs in its fastest
supported inference form: BN folded (mmcv's ``fuse_conv_bn``; CompConv layers through
``mmdet_compconv.switch_to_deploy``), in NCHW and in channels_last; both are reported and the
faster one enters the ratio. Calls are interleaved (A B A B ...) after a warm-up with a fixed
thread count, and medians are compared, so drift within a run cancels; on a VM the ratio still
moved by up to ~0.1 between runs, so repeat a run before trusting its second digit. For a
two-stage detector, ``predict`` gives both RoI heads the same (the vanilla RPN's) proposals.

With ``--runtime onnxruntime`` or ``--runtime openvino`` (the latter an optional extra,
``pip install .[deploy]``) both sides are exported the same way (TorchScript exporter, opset 17,
static shape) for each part (``backbone``, ``backbone+neck``, ``tensor``: backbone, neck and
dense head) and run by that runtime; the vanilla side with BN folded, the CompConv side in the
forms of ``--runtime-forms`` (default its export form, ``mmdet_compconv.export``); the ratio
takes the fastest CompConv form. ``--profile`` then prints the runtime's own per-op profile.

Example:
    python tools/analysis_tools/benchmark_latency.py \
        configs/compconv/faster-rcnn_compconv128-r50_fpn_1x_coco.py --sizes 224x224 800x1216
    python tools/analysis_tools/benchmark_latency.py \
        configs/compconv/faster-rcnn_compconv128-r50_fpn_1x_coco.py --sizes 800x1216 \
        --runtime onnxruntime --modes backbone tensor
"""
from __future__ import annotations

import argparse
import logging
import copy
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch

from mmdet_compconv.deploy import COLLAPSE_ABOVE
from mmdet_compconv.onnx_export import ORT_LEVELS, RUNTIMES

RUNTIME_MODES = ('backbone', 'backbone+neck', 'tensor')
RUNTIME_FORMS = ('export', 'deploy', 'train')

VANILLA_TYPES = {
    'CompConvResNet': 'ResNet',
    'CompConvResNetV1d': 'ResNetV1d',
    'CompConvFPN': 'FPN',
    'CompConvPAFPN': 'PAFPN',
    'CompConvRPNHead': 'RPNHead',
}


def vanilla_twin(cfg):
    """The model config with every CompConv part replaced by mmdet's vanilla one.

    Example:
        >>> vanilla_twin(dict(type='CompConvResNet', depth=50, compconv_layers=('conv2', ),
        ...                   neck=dict(conv_cfg=dict(type='CompConv'))))
        {'type': 'ResNet', 'depth': 50, 'neck': {'conv_cfg': None}}
    """
    if isinstance(cfg, dict):
        out = {}
        for key, value in cfg.items():
            if key.startswith(('compconv', 'stage_with_compconv')):
                continue
            if key == 'type' and value in VANILLA_TYPES:
                value = VANILLA_TYPES[value]
            if key == 'conv_cfg' and isinstance(value, dict) and \
                    str(value.get('type', '')).split('.')[-1] == 'CompConv':
                value = None
            out[key] = vanilla_twin(value)
        return out
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(vanilla_twin(v) for v in cfg)
    return cfg


def build_model(model_cfg: dict) -> torch.nn.Module:
    """Build a detector with random weights and BN statistics calibrated to its activations.

    Untrained BN statistics let activations shrink through the network into denormal floats,
    which are orders of magnitude slower on x86 and would make any timing meaningless;
    calibrated statistics give unit-scale activations, as in a trained model.
    """
    from mmdet.registry import MODELS
    from mmengine.config import ConfigDict
    from mmengine.logging import MMLogger
    model_cfg = ConfigDict(copy.deepcopy(model_cfg))
    if 'backbone' in model_cfg:
        model_cfg['backbone']['init_cfg'] = None
    model = MODELS.build(model_cfg)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs every parameter
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the calibration batches
    model.train()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(2):
            model.extract_feat(torch.rand(2, 3, 256, 256, generator=g))
    return model.eval()


def fastest_form(model: torch.nn.Module, collapse_above: Optional[float]) -> torch.nn.Module:
    """BN folded everywhere it can be: CompConv through switch_to_deploy, the rest by mmcv."""
    from mmcv.cnn import fuse_conv_bn

    from mmdet_compconv import switch_to_deploy
    return fuse_conv_bn(switch_to_deploy(copy.deepcopy(model), collapse_above))


def data_samples(h: int, w: int, with_gt: bool = False) -> list:
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                         batch_input_shape=(h, w), scale_factor=(1.0, 1.0)))
    if with_gt:
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[0.1 * w, 0.1 * h, 0.5 * w, 0.6 * h],
                                 [0.4 * w, 0.3 * h, 0.9 * w, 0.8 * h]]),
            labels=torch.tensor([0, 1]))
    return [sample]


def predict_with_proposals(model, x: torch.Tensor, samples: list, proposals: list):
    """A two-stage detector's ``predict`` with the RPN run but its proposals replaced.

    RoIAlign's cost grows with the proposals' sizes (mmdet samples each bin adaptively), and
    untrained RPNs propose arbitrary boxes, so both sides get the same proposals (the vanilla
    twin's) to time the same RoI head work.
    """
    feats = model.extract_feat(x)
    model.rpn_head.predict(feats, samples, rescale=False)
    results = model.roi_head.predict(feats, [p.clone() for p in proposals], samples,
                                     rescale=True)
    return model.add_pred_to_datasample(samples, results)


def calls(model, mode: str, x: torch.Tensor, proposals: list = None) -> Callable[[], object]:
    h, w = x.shape[-2:]
    samples = data_samples(h, w)
    if mode == 'predict' and proposals is not None:
        return lambda: predict_with_proposals(model, x, samples, proposals)
    return {
        'backbone': lambda: model.backbone(x),
        'backbone+neck': lambda: model.neck(model.backbone(x)),
        'tensor': lambda: model._forward(x, samples),
        'predict': lambda: model.predict(x, samples),
    }[mode]


def interleaved(fns: Dict[str, Callable], warmup: int, repeats: int, sync) -> Dict[str, float]:
    """Median seconds of each function, run round-robin."""
    times = {k: [] for k in fns}
    with torch.inference_mode():
        for _ in range(warmup):
            for fn in fns.values():
                fn()
        for _ in range(repeats):
            for name, fn in fns.items():
                sync()
                t0 = time.perf_counter()
                fn()
                sync()
                times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def profile_ops(fn: Callable, rows: int = 8) -> str:
    """Self time per op of one call, as torch.profiler tabulates it."""
    with torch.inference_mode(), torch.profiler.profile() as prof:
        fn()
    return prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=rows,
                                     max_name_column_width=30)


def train_probe(model_cfg: dict, h: int, w: int, steps: int) -> dict:
    """One process, one model: median train-step seconds and peak memory growth."""
    import resource

    import psutil
    model = build_model(model_cfg).train()
    x = torch.rand(1, 3, h, w)
    samples = data_samples(h, w, with_gt=True)
    rss0 = psutil.Process().memory_info().rss
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        losses = model.loss(x, samples) if 'rpn_head' in model_cfg or 'bbox_head' in model_cfg \
            else {'sum': sum(o.sum() for o in model.backbone(x))}
        sum(v.sum() if torch.is_tensor(v) else sum(t.sum() for t in v)
            for v in losses.values()).backward()
        model.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return dict(step_s=statistics.median(times[1:] or times), peak_mb=(peak - rss0) / 2**20)


def parse_size(text: str) -> Tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'size must look like 800x1216, got {text!r}')
    return h, w


def main(argv: List[str] = None) -> None:
    from mmengine.config import Config, DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a detector config with CompConv parts')
    parser.add_argument('--sizes', nargs='+', type=parse_size, default=[(224, 224), (800, 1216)])
    parser.add_argument('--modes', nargs='+', default=None,
                        choices=['backbone', 'backbone+neck', 'tensor', 'predict', 'train'],
                        help='default: all (torch), backbone backbone+neck tensor (runtimes)')
    parser.add_argument('--runtime', choices=['torch'] + list(RUNTIMES), default='torch',
                        help='run eager PyTorch, or export to ONNX and run ONNX Runtime or '
                        'OpenVINO')
    parser.add_argument('--runtime-forms', nargs='+', choices=RUNTIME_FORMS, default=['export'],
                        help='CompConv forms exported for a runtime: export (to_export_form), '
                        'deploy (switch_to_deploy), train (as trained)')
    parser.add_argument('--ort-levels', nargs='+', choices=ORT_LEVELS, default=['all'],
                        help='ONNX Runtime graph optimisation levels to time each model at '
                        '(all: with the NCHWc layout transformer; extended: without)')
    parser.add_argument('--onnx-dir', default=None,
                        help='keep the exported .onnx files here (default: a temporary dir)')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--train-size', type=parse_size, default=(512, 512))
    parser.add_argument('--collapse-above', type=parse_fraction, default=COLLAPSE_ABOVE,
                        help='deploy 1x1 CompConvs whose MACs exceed this fraction of the dense '
                        "conv's as that dense conv (switch_to_deploy's collapse_above; "
                        '"none": never)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--fp16', action='store_true', help='also time fp16 (CUDA only)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='key=value overrides of the CompConv side, e.g. '
                        "model.backbone.compconv_layers=\"('conv2',)\"")
    parser.add_argument('--profile', action='store_true',
                        help='print where the time goes (torch.profiler, per op) in the fastest '
                        'form of each side, for each part and size')
    parser.add_argument('--probe', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.modes is None:
        args.modes = (['backbone', 'backbone+neck', 'tensor', 'predict', 'train']
                      if args.runtime == 'torch' else list(RUNTIME_MODES))
    if args.runtime != 'torch':
        bad = [m for m in args.modes if m not in RUNTIME_MODES]
        if bad:
            parser.error(f'--runtime {args.runtime} exports {RUNTIME_MODES}; --modes {bad} '
                         'need PyTorch (box decoding, NMS and RoI heads are not exported)')
        if args.fp16:
            parser.error(f'--runtime {args.runtime} runs fp32 on the CPU: drop --fp16')

    import mmdet_compconv  # noqa: F401
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    comp_cfg = cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else dict(cfg.model)
    comp_cfg.pop('data_preprocessor', None)
    twin_cfg = vanilla_twin(comp_cfg)

    if args.probe:
        side, h, w = args.probe.split(':')
        print(json.dumps(train_probe(comp_cfg if side == 'compconv' else twin_cfg,
                                     int(h), int(w), steps=3)))
        return

    if args.runtime != 'torch':
        run_exported(args, twin_cfg, comp_cfg)
        return

    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    dtypes = [torch.float32] + ([torch.float16] if args.fp16 and device.type == 'cuda' else [])
    forms = {side: fastest_form(build_model(side_cfg), args.collapse_above)
             for side, side_cfg in (('vanilla', twin_cfg), ('CompConv', comp_cfg))}
    proc = torch.cuda.get_device_name() if device.type == 'cuda' else _cpu_name()
    print(f'# {os.path.basename(args.config)} on {proc}, {torch.get_num_threads()} threads, '
          f'batch 1, median seconds of {args.repeats} interleaved runs after {args.warmup} '
          f'warm-up; BN folded; CompConv deployed with collapse_above={args.collapse_above}'
          + ('; predict: both RoI heads get the vanilla RPN\'s proposals'
             if 'roi_head' in comp_cfg and 'predict' in args.modes else '')
          + (f'; GLIBC_TUNABLES={os.environ["GLIBC_TUNABLES"]}'
             if os.environ.get('GLIBC_TUNABLES') else ''))
    header = [f'{name} {fmt}' for name in forms for fmt in ('NCHW', 'CL')]
    print('| size | dtype | part | ' + ' | '.join(header) + ' | ratio (best/best) |')
    print('|---' * (len(header) + 4) + '|')
    profiles = []
    for dtype in dtypes:
        models = {}
        for name, model in forms.items():
            for fmt_name, fmt in (('NCHW', torch.contiguous_format), ('CL', torch.channels_last)):
                models[f'{name} {fmt_name}'] = (copy.deepcopy(model).to(
                    device, dtype, memory_format=fmt), fmt)
        for h, w in args.sizes:
            for mode in [m for m in args.modes if m != 'train']:
                x = torch.rand(1, 3, h, w, device=device, dtype=dtype, generator=torch.Generator(
                    device).manual_seed(0))
                proposals = None
                if mode == 'predict' and 'roi_head' in comp_cfg:
                    model = models['vanilla NCHW'][0]
                    with torch.inference_mode():
                        proposals = model.rpn_head.predict(
                            model.extract_feat(x), data_samples(h, w), rescale=False)
                fns = {key: calls(model, mode, x.to(memory_format=fmt), proposals)
                       for key, (model, fmt) in models.items()}
                med = interleaved(fns, args.warmup, args.repeats, sync)
                best_v = min(v for k, v in med.items() if k.startswith('vanilla'))
                best_c = min(v for k, v in med.items() if k.startswith('CompConv'))
                cells = ' | '.join(f'{med[k]:.3f}' for k in header)
                print(f'| {h}x{w} | {str(dtype)[6:]} | {mode} | {cells} | '
                      f'**{best_c / best_v:.2f}x** |', flush=True)
                if args.profile:
                    for side in ('vanilla', 'CompConv'):
                        key = min((k for k in med if k.startswith(side)), key=med.get)
                        profiles.append((f'{h}x{w} {mode} {key}', profile_ops(fns[key])))
    for title, table in profiles:
        print(f'\nwhere the time goes: {title}\n{table}')
    if 'train' in args.modes:
        h, w = args.train_size
        res = {}
        for side in ('vanilla', 'compconv'):
            cmd = [sys.executable, __file__, args.config, '--threads', str(args.threads),
                   '--probe', f'{side}:{h}:{w}'] + (['--cfg-options'] + [
                       f'{k}={v!r}' for k, v in args.cfg_options.items()]
                                                    if args.cfg_options else [])
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            res[side] = json.loads(out.strip().splitlines()[-1])
        print(f'\ntrain step at {h}x{w} (batch 1, loss + backward, train mode, NCHW):')
        for side, r in res.items():
            print(f'  {side:8s}: {r["step_s"]:.3f} s/step, peak memory +{r["peak_mb"]:.0f} MB')
        print(f'  ratio: {res["compconv"]["step_s"] / res["vanilla"]["step_s"]:.2f}x time, '
              f'{res["compconv"]["peak_mb"] / res["vanilla"]["peak_mb"]:.2f}x memory')


def runtime_form(model: torch.nn.Module, form: str, collapse_above: Optional[float]):
    """A copy of ``model`` in a form to export: ``export`` (:func:`to_export_form`), ``deploy``
    (switch_to_deploy + BN folded) or ``train`` (as trained, eval mode)."""
    from mmdet_compconv.export import to_export_form
    if form == 'export':
        return to_export_form(copy.deepcopy(model).eval(), collapse_above)
    if form == 'deploy':
        return fastest_form(model, collapse_above)
    return copy.deepcopy(model).eval()


def run_exported(args, twin_cfg: dict, comp_cfg: dict) -> None:
    """The interleaved table with both sides exported to ONNX and run by ``args.runtime``."""
    import tempfile

    from mmdet_compconv.onnx_export import (DenseDetector, export_onnx, load_runtime,
                                            runtime_profile)
    models = {'vanilla': runtime_form(build_model(twin_cfg), 'deploy', None)}
    comp = build_model(comp_cfg)
    for form in args.runtime_forms:
        models[f'CompConv {form}'] = runtime_form(comp, form, args.collapse_above)
    levels = args.ort_levels if args.runtime == 'onnxruntime' else [None]
    columns = [(name, level) for name in models for level in levels]
    header = [name + (f' {level}' if len(levels) > 1 else '') for name, level in columns]
    version = _runtime_version(args.runtime)
    print(f'# {os.path.basename(args.config)} on {_cpu_name()}, {args.runtime} {version}, '
          f'{args.threads} threads, batch 1, fp32, median seconds of {args.repeats} interleaved '
          f'runs after {args.warmup} warm-up; both sides exported with torch.onnx '
          f'(TorchScript, opset 17, static shape); vanilla BN folded; CompConv forms '
          f'{args.runtime_forms} with collapse_above={args.collapse_above}'
          + (f'; ONNX Runtime optimisation levels {levels}' if levels != [None] else ''))
    print('| size | dtype | part | ' + ' | '.join(header) + ' | ratio (best/best vanilla) |')
    print('|---' * (len(header) + 4) + '|')
    profiles = []
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.onnx_dir or tmp
        for h, w in args.sizes:
            x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
            for mode in args.modes:
                fns, paths = {}, {}
                for name, model in models.items():
                    net = DenseDetector(model, mode).eval()
                    paths[name] = os.path.join(
                        out_dir, f'{name.replace(" ", "_")}_{mode.replace("+", "_")}_{h}x{w}.onnx')
                    export_onnx(net, x, paths[name])
                for key, (name, level) in zip(header, columns):
                    fns[key] = _bind(load_runtime(paths[name], args.runtime, args.threads,
                                                  ort_level=level or 'all'), x.numpy())
                med = interleaved(fns, args.warmup, args.repeats, lambda: None)
                best_v = min(v for k, v in med.items() if k.startswith('vanilla'))
                best_c = min(v for k, v in med.items() if not k.startswith('vanilla'))
                cells = ' | '.join(f'{med[k]:.3f}' for k in header)
                print(f'| {h}x{w} | float32 | {mode} | {cells} | '
                      f'**{best_c / best_v:.2f}x** |', flush=True)
                if args.profile:
                    for key, (name, level) in zip(header, columns):
                        profiles.append((f'{h}x{w} {mode} {key} ({args.runtime})',
                                         runtime_profile(paths[name], args.runtime, args.threads,
                                                         x.numpy(), ort_level=level or 'all')))
    for title, table in profiles:
        print(f'\nwhere the time goes: {title}\n{table}')


def _bind(run, x):
    return lambda: run(x)


def _runtime_version(runtime: str) -> str:
    import importlib
    return getattr(importlib.import_module(runtime), '__version__', '?')


def parse_fraction(text: str) -> Optional[float]:
    if text.lower() == 'none':
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a fraction or "none", got {text!r}')


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or 'CPU'


if __name__ == '__main__':
    main()
