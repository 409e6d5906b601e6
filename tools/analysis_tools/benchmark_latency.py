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
import importlib
import json
import os
import subprocess
import sys
import tempfile
from typing import Callable, Dict, List, Optional

import torch
from mmengine.config import Config, DictAction

from mmdet_compconv.cnn import COLLAPSE_ABOVE
from mmdet_compconv.deployment import (FORMS, ORT_LEVELS, PRECISIONS, RUNTIMES,
                                       calibration_inputs, executed_precisions, isa_summary,
                                       load_runtime, model_form, quantize_model, runtime_profile,
                                       torch_conv_dtypes, vanilla_twin)
from mmdet_compconv.deployment.benchmark import (calibrated_model, cpu_name, data_samples,
                                                 export_part, interleaved, part_call,
                                                 profile_ops, train_step_probe)
from mmdet_compconv.utils import parse_fraction, parse_size

TORCH_MODES = ('backbone', 'backbone+neck', 'tensor', 'predict', 'train')
RUNTIME_MODES = ('backbone', 'backbone+neck', 'tensor')
#: The CompConv forms timed when --runtime-forms is not given, per (runtime kind, precision):
#: the fastest ones found on an AMX Xeon (docs/deployment.md); every one is shown.
DEFAULT_FORMS = {('torch', 'fp32'): ['deploy'], ('torch', 'bf16'): ['deploy', 'export'],
                 ('runtime', 'fp32'): ['export'], ('runtime', 'bf16'): ['export', 'hybrid'],
                 ('runtime', 'int8'): ['export', 'hybrid']}
TORCH_INT8 = ('int8: not offered in PyTorch: its CPU int8 paths (eager / FX torch.ao.quantization, '
              'deprecated; PT2E with the X86 Inductor quantizer, int8 kernels only under '
              'torch.compile) do not reach the deployed CompConv, which calls F.conv2d on its own '
              'weights; time int8 with --runtime openvino or onnxruntime')
ORT_BF16 = ("bf16: not offered by ONNX Runtime's CPU execution provider (no bf16 convolution "
            'kernels); time bf16 with --runtime openvino or torch')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a detector config with CompConv parts')
    parser.add_argument('--sizes', nargs='+', type=parse_size, default=[(224, 224), (800, 1216)])
    parser.add_argument('--modes', nargs='+', default=None, choices=TORCH_MODES,
                        help='default: all (torch), backbone backbone+neck tensor (runtimes)')
    parser.add_argument('--runtime', choices=['torch'] + list(RUNTIMES), default='torch',
                        help='run eager PyTorch, or export to ONNX and run ONNX Runtime or '
                        'OpenVINO')
    parser.add_argument('--precision', nargs='+', choices=PRECISIONS, default=['fp32'],
                        help='one table per precision: fp32; bf16 (PyTorch autocast and bf16 '
                        'weights, OpenVINO INFERENCE_PRECISION_HINT=bf16); int8 (OpenVINO: NNCF, '
                        'ONNX Runtime: static QDQ post-training quantization with --calib)')
    parser.add_argument('--runtime-forms', '--forms', nargs='+', choices=FORMS, default=None,
                        help='CompConv forms timed (default per precision: torch fp32 deploy, '
                        'bf16 deploy export; runtimes fp32 export, bf16 and int8 export hybrid)')
    parser.add_argument('--calib', default=None,
                        help='folder of calibration images for int8 (through the test pipeline)')
    parser.add_argument('--calib-num', type=int, default=16)
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
    if args.runtime != 'torch' and 'int8' in args.precision and not args.calib:
        parser.error('--precision int8 quantizes both sides after export: give --calib DIR '
                     '(calibration images)')
    if args.runtime == 'torch' and args.device != 'cpu' and 'bf16' in args.precision:
        parser.error('--precision bf16 times CPU autocast / bf16 weights: use --device cpu')
    return args


def forms_for(args, precision: str) -> List[str]:
    kind = 'torch' if args.runtime == 'torch' else 'runtime'
    return args.runtime_forms or DEFAULT_FORMS[(kind, precision)]


def print_table(title: str, header: List[str], notes: List[str] = ()) -> None:
    print(title)
    for note in notes:
        print(f'# {note}')
    print('| size | precision | part | ' + ' | '.join(header) + ' | ratio (best/best vanilla) |')
    print('|---' * (len(header) + 4) + '|')


def print_row(size, precision: str, mode: str, med: dict, header: List[str]) -> None:
    best_v = min(v for k, v in med.items() if k.startswith('vanilla'))
    best_c = min(v for k, v in med.items() if not k.startswith('vanilla'))
    cells = ' | '.join(f'{med[k]:.3f}' if k in med else '-' for k in header)
    print(f'| {size[0]}x{size[1]} | {precision} | {mode} | {cells} | '
          f'**{best_c / best_v:.2f}x** |', flush=True)


def torch_columns(args, precision: str, sides: Dict[str, torch.nn.Module],
                  device: torch.device) -> Dict[str, tuple]:
    """{column: (model, memory format, cast)}: fp32 / fp16 in NCHW and channels_last; bf16 in
    channels_last, under autocast (fp32 weights) and with the weights cast to bf16."""
    formats = (('NCHW', torch.contiguous_format), ('CL', torch.channels_last))
    columns = {}
    for side, m in sides.items():
        if precision == 'bf16':
            for cast in ('autocast', 'bf16'):
                dtype = torch.bfloat16 if cast == 'bf16' else torch.float32
                columns[f'{side} {cast} CL'] = (copy.deepcopy(m).to(
                    device, dtype, memory_format=torch.channels_last), torch.channels_last, cast)
        else:
            dtype = torch.float16 if precision == 'fp16' else torch.float32
            for name, fmt in formats:
                columns[f'{side} {name}'] = (copy.deepcopy(m).to(device, dtype,
                                                                memory_format=fmt), fmt, None)
    return columns


def torch_call(model, mode: str, x: torch.Tensor, fmt, cast: Optional[str],
               proposals) -> Callable[[], object]:
    """A part call of ``model`` in its precision (autocast for ``cast='autocast'``)."""
    if cast == 'bf16':
        x = x.to(torch.bfloat16)
    fn = part_call(model, mode, x.to(memory_format=fmt), proposals)
    if cast != 'autocast':
        return fn

    def autocast_call():
        with torch.autocast('cpu', dtype=torch.bfloat16):
            return fn()
    return autocast_call


def run_torch(args, cfg: Config, twin: dict) -> None:
    trained = {'vanilla': calibrated_model(cfg, twin), 'CompConv': calibrated_model(cfg)}
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    two_stage = 'roi_head' in cfg.model
    processor = torch.cuda.get_device_name() if device.type == 'cuda' else cpu_name()
    profiles = []
    precisions = list(args.precision) + (['fp16'] if args.fp16 else [])
    for precision in precisions:
        if precision == 'int8':
            print(f'# {TORCH_INT8}\n', flush=True)
            continue
        forms = forms_for(args, 'fp32' if precision == 'fp16' else precision)
        sides = {'vanilla': model_form(trained['vanilla'], 'deploy', None)}
        for form in forms:
            key = 'CompConv' if len(forms) == 1 else f'CompConv {form}'
            sides[key] = model_form(trained['CompConv'], form, args.collapse_above)
        columns = torch_columns(args, precision, sides, device)
        h, w = args.sizes[0]
        x = torch.rand(1, 3, h, w).to(device)
        readback = []
        if device.type == 'cpu':
            for key, (m, fmt, cast) in columns.items():
                found = torch_conv_dtypes(torch_call(m, 'backbone', x, fmt, cast, None))
                readback.append(f'{key}: ' + ', '.join(f'{n} {d}' for d, n in found.items()))
        print_table(
            f'# {os.path.basename(args.config)} on {processor} ({isa_summary()}), torch '
            f'{torch.__version__}, {torch.get_num_threads()} threads, batch 1, {precision}, '
            f'median seconds of {args.repeats} interleaved runs after {args.warmup} warm-up; '
            f'BN folded; CompConv forms {forms} with collapse_above={args.collapse_above}'
            + ('; bf16: autocast = torch.autocast(cpu, bfloat16) with fp32 weights, bf16 = '
               'weights and input cast to bfloat16, both channels_last'
               if precision == 'bf16' else '')
            + ("; predict: both RoI heads get the vanilla RPN's proposals"
               if two_stage and 'predict' in args.modes else ''), list(columns),
            ['convolution outputs by dtype, read back from one backbone call: '
             + '; '.join(readback)] if readback else [])
        for h, w in args.sizes:
            x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)).to(device)
            if precision == 'fp16':
                x = x.half()
            run_modes(args, columns, x, two_stage, sync, precision, profiles)
    for title, table in profiles:
        print(f'\nwhere the time goes: {title}\n{table}')
    if 'train' in args.modes:
        run_train_probes(args)


def run_modes(args, columns: dict, x: torch.Tensor, two_stage: bool, sync, precision: str,
              profiles: list) -> None:
    """One table row per part at the size of ``x``."""
    h, w = x.shape[-2:]
    for mode in [m for m in args.modes if m != 'train']:
        if precision == 'bf16' and (mode == 'predict' or (mode == 'tensor' and two_stage)):
            print(f"# {mode}: not timed in bf16 (it runs the RPN's NMS, and mmcv's NMS takes "
                  'float32 boxes and scores only)', flush=True)
            continue
        proposals = None
        if mode == 'predict' and two_stage:
            ref = next(iter(columns.values()))[0]
            with torch.inference_mode():
                proposals = ref.rpn_head.predict(ref.extract_feat(x), data_samples(h, w),
                                                 rescale=False)
        fns = {k: torch_call(m, mode, x, fmt, cast, proposals)
               for k, (m, fmt, cast) in columns.items()}
        med = interleaved(fns, args.warmup, args.repeats, sync)
        print_row((h, w), precision, mode, med, list(columns))
        if args.profile:
            for side in ('vanilla', 'CompConv'):
                key = min((k for k in med if k.startswith(side)), key=med.get)
                profiles.append((f'{h}x{w} {precision} {mode} {key}', profile_ops(fns[key])))


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
    trained = {'vanilla': model_form(calibrated_model(cfg, twin), 'deploy', None),
               'CompConv': calibrated_model(cfg)}
    version = getattr(importlib.import_module(args.runtime), '__version__', '?')
    profiles = []
    with tempfile.TemporaryDirectory() as tmp:
        out_dir, written = args.onnx_dir or tmp, set()
        for precision in args.precision:
            if args.runtime == 'onnxruntime' and precision == 'bf16':
                print(f'# {ORT_BF16}\n', flush=True)
                continue
            profiles += time_precision(args, precision, trained, out_dir, version, written)
    for title, table in profiles:
        print(f'\nwhere the time goes: {title}\n{table}')


def time_precision(args, precision: str, trained: dict, out_dir: str, version: str,
                   written: set) -> list:
    """Export (and quantize) every column, read back what each runs, then print the table;
    ``written`` holds the files this run wrote (exports shared between precisions)."""
    forms = forms_for(args, precision)
    models = {'vanilla': trained['vanilla']}
    for form in forms:
        models[f'CompConv {form}'] = model_form(trained['CompConv'], form, args.collapse_above)
    levels = args.ort_levels if args.runtime == 'onnxruntime' else ['all']
    columns = [(name, level) for name in models for level in levels]
    header = [name + (f' {level}' if len(levels) > 1 else '') for name, level in columns]
    rows, notes = [], []
    for h, w in args.sizes:
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
        calib = (calibration_inputs(args.cfg, args.calib, args.calib_num, (h, w))
                 if precision == 'int8' else None)
        for mode in args.modes:
            fns, paths, found = {}, {}, []
            for key, (name, level) in zip(header, columns):
                stem = f'{name.replace(" ", "_")}_{mode.replace("+", "_")}_{h}x{w}'
                path = os.path.join(out_dir, stem + '.onnx')
                if path not in written:  # the precisions of one run share the float export
                    written.add(export_part(models[name], mode, x, path))
                if precision == 'int8':
                    suffix = '.xml' if args.runtime == 'openvino' else '.onnx'
                    qpath = os.path.join(out_dir, f'{stem}_int8{suffix}')
                    if qpath not in written:
                        written.add(quantize_model(path, args.runtime, calib, qpath))
                    path = qpath
                paths[key] = path
                run = load_runtime(path, args.runtime, args.threads, ort_level=level,
                                   precision=precision)
                fns[key] = (lambda run=run, a=x.numpy(): run(a))
                found.append(f'{key}: {executed_precisions(run)}')
            rows.append(((h, w), mode, fns, paths, x))
            notes.append(f'executed (read back), {mode} {h}x{w}: ' + ' | '.join(found))
    hint = {'fp32': 'INFERENCE_PRECISION_HINT=f32', 'bf16': 'INFERENCE_PRECISION_HINT=bf16',
            'int8': f'NNCF int8 ({args.calib_num} calibration images from {args.calib}), '
                    'no precision hint (float ops in the plugin default)'}[precision] \
        if args.runtime == 'openvino' else (
            f'static QDQ int8 ({args.calib_num} calibration images from {args.calib})'
            if precision == 'int8' else 'float model')
    print_table(
        f'# {os.path.basename(args.config)} on {cpu_name()} ({isa_summary()}), {args.runtime} '
        f'{version}, {args.threads} threads, batch 1, {precision} ({hint}), median seconds of '
        f'{args.repeats} interleaved runs after {args.warmup} warm-up; both sides exported with '
        f'torch.onnx (TorchScript, opset 17, static shape); vanilla BN folded; CompConv forms '
        f'{forms} with collapse_above={args.collapse_above}'
        + (f'; ONNX Runtime optimisation levels {levels}' if len(levels) > 1 else ''), header,
        notes)
    profiles = []
    for size, mode, fns, paths, x in rows:
        med = interleaved(fns, args.warmup, args.repeats)
        print_row(size, precision, mode, med, header)
        if args.profile:
            for key, (name, level) in zip(header, columns):
                profiles.append((f'{size[0]}x{size[1]} {precision} {mode} {key} '
                                 f'({args.runtime})',
                                 runtime_profile(paths[key], args.runtime, args.threads,
                                                 x.numpy(), ort_level=level,
                                                 precision=precision)))
    return profiles


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    twin = vanilla_twin(cfg.model.to_dict())
    args.cfg = cfg
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
