"""Latency of a CompConv detector against its vanilla twin, measured in one process.

The vanilla twin is the same config with every CompConv part swapped for mmdet's own
(:func:`mmdet_compconv.deployment.vanilla_twin`). Both sides have random weights with
calibrated BatchNorm statistics (:func:`mmdet_compconv.deployment.benchmark.calibrated_model`).

``--runtime torch``: each side runs in its fastest PyTorch form (the ``deploy`` form: BN
folded, CompConvs switched to deploy), in NCHW and in channels_last; both are reported and the
faster one enters the ratio. For a two-stage detector, ``predict`` gives both RoI heads the
same (the vanilla RPN's) proposals. ``train`` times a training step of each side in its own
process.

``--runtime onnxruntime`` / ``openvino`` (the latter an optional extra, ``pip install
.[deploy]``): both sides are exported the same way (TorchScript exporter, opset 17, static
shape) for each part (``backbone``, ``backbone+neck``, ``tensor``) and run by that runtime; the
vanilla side in the deploy form, the CompConv side in the forms of ``--runtime-forms`` (default
the export form); the ratio takes the fastest CompConv form.

Calls are interleaved (A B A B ...) after a warm-up with a fixed thread count and medians are
compared, so drift within a run cancels; on a VM the ratio still moved by up to ~0.1 between
runs, so repeat a run before trusting its second digit. ``--profile`` prints where the time
goes (torch.profiler, or the runtime's own per-op profile).

Example:
    python tools/analysis_tools/benchmark_latency.py \\
        configs/compconv/faster-rcnn_compconv128-r50_fpn_1x_coco.py --sizes 224x224 800x1216
    python tools/analysis_tools/benchmark_latency.py \\
        configs/compconv/faster-rcnn_compconv128-r50_fpn_1x_coco.py --sizes 800x1216 \\
        --runtime onnxruntime --modes backbone tensor
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
from typing import List, Optional

import torch
from mmengine.config import Config, DictAction

from mmdet_compconv.cnn import COLLAPSE_ABOVE
from mmdet_compconv.deployment import ORT_LEVELS, RUNTIMES, model_form, runtime_profile
from mmdet_compconv.deployment import vanilla_twin
from mmdet_compconv.deployment.benchmark import (calibrated_model, cpu_name, data_samples,
                                                 exported_call, interleaved, part_call,
                                                 profile_ops, train_step_probe)
from mmdet_compconv.utils import parse_fraction, parse_size

TORCH_MODES = ('backbone', 'backbone+neck', 'tensor', 'predict', 'train')
RUNTIME_MODES = ('backbone', 'backbone+neck', 'tensor')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a detector config with CompConv parts')
    parser.add_argument('--sizes', nargs='+', type=parse_size, default=[(224, 224), (800, 1216)])
    parser.add_argument('--modes', nargs='+', default=None, choices=TORCH_MODES,
                        help='default: all (torch), backbone backbone+neck tensor (runtimes)')
    parser.add_argument('--runtime', choices=['torch'] + list(RUNTIMES), default='torch',
                        help='run eager PyTorch, or export to ONNX and run ONNX Runtime or '
                        'OpenVINO')
    parser.add_argument('--runtime-forms', nargs='+', choices=('export', 'deploy', 'train'),
                        default=['export'], help='CompConv forms exported for a runtime')
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
                        help="switch_to_deploy's collapse_above (\"none\": never collapse)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='key=value overrides of the CompConv side, e.g. '
                        "model.backbone.compconv_layers=\"('conv2',)\"")
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--fp16', action='store_true', help='also time fp16 (CUDA only)')
    parser.add_argument('--profile', action='store_true',
                        help='print where the time goes in the fastest form of each side')
    parser.add_argument('--probe', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.modes is None:
        args.modes = list(TORCH_MODES if args.runtime == 'torch' else RUNTIME_MODES)
    bad = [m for m in args.modes if m not in RUNTIME_MODES]
    if args.runtime != 'torch' and bad:
        parser.error(f'--runtime {args.runtime} exports {RUNTIME_MODES}; --modes {bad} '
                     'need PyTorch (box decoding, NMS and RoI heads are not exported)')
    if args.fp16 and (args.runtime != 'torch' or not args.device.startswith('cuda')):
        parser.error('--fp16 times CUDA fp16 in PyTorch: it needs --runtime torch and a CUDA '
                     '--device')
    return args


def print_table(title: str, header: List[str]) -> None:
    print(title)
    print('| size | dtype | part | ' + ' | '.join(header) + ' | ratio (best/best vanilla) |')
    print('|---' * (len(header) + 4) + '|')


def print_row(size, dtype: str, mode: str, med: dict, header: List[str]) -> None:
    best_v = min(v for k, v in med.items() if k.startswith('vanilla'))
    best_c = min(v for k, v in med.items() if not k.startswith('vanilla'))
    cells = ' | '.join(f'{med[k]:.3f}' for k in header)
    print(f'| {size[0]}x{size[1]} | {dtype} | {mode} | {cells} | **{best_c / best_v:.2f}x** |',
          flush=True)


def run_torch(args, cfg: Config, twin: dict) -> None:
    sides = {'vanilla': model_form(calibrated_model(cfg, twin), 'deploy', None),
             'CompConv': model_form(calibrated_model(cfg), 'deploy', args.collapse_above)}
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    formats = (('NCHW', torch.contiguous_format), ('CL', torch.channels_last))
    header = [f'{side} {name}' for side in sides for name, _ in formats]
    two_stage = 'roi_head' in cfg.model
    processor = torch.cuda.get_device_name() if device.type == 'cuda' else cpu_name()
    print_table(
        f'# {os.path.basename(args.config)} on {processor}, {torch.get_num_threads()} threads, '
        f'batch 1, median seconds of {args.repeats} interleaved runs after {args.warmup} '
        f'warm-up; BN folded; CompConv deployed with collapse_above={args.collapse_above}'
        + ("; predict: both RoI heads get the vanilla RPN's proposals"
           if two_stage and 'predict' in args.modes else ''), header)
    profiles = []
    for dtype in [torch.float32] + ([torch.float16] if args.fp16 else []):
        models = {f'{side} {name}': (copy.deepcopy(m).to(device, dtype, memory_format=fmt), fmt)
                  for side, m in sides.items() for name, fmt in formats}
        for h, w in args.sizes:
            x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)).to(device, dtype)
            run_modes(args, models, x, two_stage, sync, str(dtype)[6:], profiles)
    for title, table in profiles:
        print(f'\nwhere the time goes: {title}\n{table}')
    if 'train' in args.modes:
        run_train_probes(args)


def run_modes(args, models: dict, x: torch.Tensor, two_stage: bool, sync, dtype: str,
              profiles: list) -> None:
    """One table row per part at the size of ``x``."""
    h, w = x.shape[-2:]
    for mode in [m for m in args.modes if m != 'train']:
        proposals = None
        if mode == 'predict' and two_stage:
            ref = models['vanilla NCHW'][0]
            with torch.inference_mode():
                proposals = ref.rpn_head.predict(ref.extract_feat(x), data_samples(h, w),
                                                 rescale=False)
        fns = {k: part_call(m, mode, x.to(memory_format=fmt), proposals)
               for k, (m, fmt) in models.items()}
        med = interleaved(fns, args.warmup, args.repeats, sync)
        print_row((h, w), dtype, mode, med, list(models))
        if args.profile:
            for side in ('vanilla', 'CompConv'):
                key = min((k for k in med if k.startswith(side)), key=med.get)
                profiles.append((f'{h}x{w} {dtype} {mode} {key}', profile_ops(fns[key])))


def run_train_probes(args) -> None:
    h, w = args.train_size
    res = {}
    for side in ('vanilla', 'compconv'):
        options = [f'{k}={v!r}' for k, v in args.cfg_options.items()]
        cmd = [sys.executable, __file__, args.config, '--threads', str(args.threads),
               '--probe', f'{side}:{h}:{w}'] + (['--cfg-options', *options] if options else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        res[side] = json.loads(out.strip().splitlines()[-1])
    print(f'\ntrain step at {h}x{w} (batch 1, loss + backward, train mode, NCHW):')
    for side, r in res.items():
        print(f'  {side:8s}: {r["step_s"]:.3f} s/step, peak memory +{r["peak_mb"]:.0f} MB')
    print(f'  ratio: {res["compconv"]["step_s"] / res["vanilla"]["step_s"]:.2f}x time, '
          f'{res["compconv"]["peak_mb"] / res["vanilla"]["peak_mb"]:.2f}x memory')


def run_exported(args, cfg: Config, twin: dict) -> None:
    models = {'vanilla': model_form(calibrated_model(cfg, twin), 'deploy', None)}
    comp = calibrated_model(cfg)
    for form in args.runtime_forms:
        models[f'CompConv {form}'] = model_form(comp, form, args.collapse_above)
    levels = args.ort_levels if args.runtime == 'onnxruntime' else ['all']
    columns = [(name, level) for name in models for level in levels]
    header = [name + (f' {level}' if len(levels) > 1 else '') for name, level in columns]
    import importlib
    version = getattr(importlib.import_module(args.runtime), '__version__', '?')
    print_table(
        f'# {os.path.basename(args.config)} on {cpu_name()}, {args.runtime} {version}, '
        f'{args.threads} threads, batch 1, fp32, median seconds of {args.repeats} interleaved '
        f'runs after {args.warmup} warm-up; both sides exported with torch.onnx '
        f'(TorchScript, opset 17, static shape); vanilla BN folded; CompConv forms '
        f'{args.runtime_forms} with collapse_above={args.collapse_above}'
        + (f'; ONNX Runtime optimisation levels {levels}' if len(levels) > 1 else ''), header)
    profiles = []
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.onnx_dir or tmp
        for h, w in args.sizes:
            x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
            for mode in args.modes:
                fns, paths = {}, {}
                for key, (name, level) in zip(header, columns):
                    paths[name] = os.path.join(out_dir, f'{name.replace(" ", "_")}_'
                                               f'{mode.replace("+", "_")}_{h}x{w}.onnx')
                    fns[key] = exported_call(models[name], mode, x, paths[name], args.runtime,
                                             args.threads, level)
                med = interleaved(fns, args.warmup, args.repeats)
                print_row((h, w), 'float32', mode, med, header)
                if args.profile:
                    for key, (name, level) in zip(header, columns):
                        profiles.append((f'{h}x{w} {mode} {key} ({args.runtime})',
                                         runtime_profile(paths[name], args.runtime, args.threads,
                                                         x.numpy(), ort_level=level)))
    for title, table in profiles:
        print(f'\nwhere the time goes: {title}\n{table}')


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    twin = vanilla_twin(cfg.model.to_dict())
    if args.probe:
        side, h, w = args.probe.split(':')
        cfg_side = cfg if side == 'compconv' else Config(dict(cfg.to_dict(), model=twin))
        print(json.dumps(train_step_probe(cfg_side, int(h), int(w))))
    elif args.runtime == 'torch':
        run_torch(args, cfg, twin)
    else:
        run_exported(args, cfg, twin)


if __name__ == '__main__':
    main()
