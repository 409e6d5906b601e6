"""CPU runtimes for exported models: ONNX Runtime and OpenVINO, compiled, run and profiled.

Both are imported only when used; OpenVINO is an optional extra (``pip install .[deploy]``).
"""
from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from typing import Callable, Dict, List

import numpy as np
import torch

from .onnx_export import op_counts
from .precision import (PRECISIONS, onnxruntime_precisions, openvino_precisions,
                        summarize_precisions)
from .quantize import quantized_ops

__all__ = ['RUNTIMES', 'ORT_LEVELS', 'OPENVINO_HINTS', 'load_runtime', 'run_onnxruntime',
           'runtime_profile', 'ort_optimized_op_counts', 'executed_precisions']

RUNTIMES = ('onnxruntime', 'openvino')
ORT_LEVELS = ('all', 'extended', 'basic')

#: OpenVINO's ``INFERENCE_PRECISION_HINT`` per precision; int8 (a quantized model) sets none:
#: the ops left in float run in the plugin's default (bf16 on CPUs with AVX512_BF16 or AMX,
#: f32 elsewhere), as a user's deployment would.
OPENVINO_HINTS = {'fp32': 'f32', 'bf16': 'bf16', 'int8': None}


def load_runtime(path: str, runtime: str, threads: int, profile: bool = False,
                 ort_level: str = 'all',
                 precision: str = 'fp32') -> Callable[[np.ndarray], List[np.ndarray]]:
    """Compile an exported model for a CPU runtime; returns ``run(x: np.ndarray) -> outputs``.

    ONNX Runtime: graph optimisations up to ``ort_level`` (``'all'`` includes the NCHWc layout
    transformer, ``'extended'`` stops before it), ``threads`` intra-op threads, one inter-op
    thread.
    OpenVINO: the CPU plugin, ``threads`` inference threads, latency hint, and the inference
    precision of :data:`OPENVINO_HINTS` (without a hint OpenVINO picks bf16 on CPUs that have
    it).

    Precisions: ``'fp32'`` and ``'bf16'`` take a float model (``.onnx``; bf16 in OpenVINO
    only: ONNX Runtime's CPU execution provider has no bf16 convolution kernels). ``'int8'``
    takes a model quantized by :func:`~mmdet_compconv.deployment.quantize_model` (an OpenVINO
    ``.xml`` with FakeQuantize ops, or a QDQ ``.onnx``). What ran is read back by
    :func:`executed_precisions`.

    Args:
        path (str): the ``.onnx`` file (or an OpenVINO ``.xml``).
        runtime (str): ``'onnxruntime'`` or ``'openvino'`` (:data:`RUNTIMES`).
        threads (int): ONNX Runtime's intra-op threads, OpenVINO's inference threads.
        profile (bool): let the runtime record per-op timings (ONNX Runtime's
            ``enable_profiling``, OpenVINO's ``PERF_COUNT``; see :func:`runtime_profile`).
            Default: False.
        ort_level (str): ONNX Runtime's graph optimisation level, one of
            :data:`ORT_LEVELS`; OpenVINO ignores it. Default: 'all'.
        precision (str): one of :data:`~mmdet_compconv.deployment.PRECISIONS`.
            Default: 'fp32'.

    Returns:
        Callable[[np.ndarray], list[np.ndarray]]: ``run(x)``, which feeds ``x`` to the
        model's first input and returns its outputs (a tuple for OpenVINO); it carries the
        ONNX Runtime ``session`` or the OpenVINO infer ``request`` and ``compiled`` model, and
        ``runtime``, ``path``, ``precision`` and ``ort_level``, as attributes.

    Raises:
        ValueError: an unknown runtime, ``ort_level`` or precision; bf16 with ONNX Runtime; an
            ``.xml`` for ONNX Runtime; int8 with a float model, or fp32 / bf16 with a
            quantized one.
        ImportError: the runtime is not installed (``pip install .[deploy]`` for OpenVINO).
    """
    if runtime not in RUNTIMES:
        raise ValueError(f'runtime must be one of {RUNTIMES}, got {runtime!r}')
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    if runtime == 'onnxruntime' and precision == 'bf16':
        raise ValueError("ONNX Runtime's CPU execution provider has no bf16 convolution "
                         "kernels: use precision 'fp32' or 'int8', or the openvino runtime")
    if runtime == 'onnxruntime' and path.endswith('.xml'):
        raise ValueError(f'{path} is an OpenVINO model: ONNX Runtime reads .onnx files')
    if runtime == 'openvino':
        try:
            import openvino as ov
        except ImportError as e:
            raise ImportError('the openvino runtime is an optional extra: pip install '
                              '"mmdet-compconv[deploy]" (or openvino)') from e
    quantized = quantized_ops(path)
    if precision == 'int8' and not quantized:
        raise ValueError(f'precision int8 needs a quantized model, but {path} has no '
                         'quantization ops: quantize it first (tools/deployment/quantize.py, '
                         'mmdet_compconv.deployment.quantize_model)')
    if precision != 'int8' and quantized:
        raise ValueError(f'{path} is quantized ({quantized} quantization ops): load it with '
                         "precision='int8'")
    if runtime == 'onnxruntime':
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        if ort_level not in ORT_LEVELS:
            raise ValueError(f'ort_level must be one of {ORT_LEVELS}, got {ort_level!r}')
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                                   f'ORT_ENABLE_{ort_level.upper()}')
        options.enable_profiling = profile
        session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        name = session.get_inputs()[0].name
        run = lambda x: session.run(None, {name: x})  # noqa: E731
        run.session = session
    else:
        config = {'INFERENCE_NUM_THREADS': threads, 'PERFORMANCE_HINT': 'LATENCY'}
        if OPENVINO_HINTS[precision]:
            config['INFERENCE_PRECISION_HINT'] = OPENVINO_HINTS[precision]
        if profile:
            config['PERF_COUNT'] = True
        compiled = ov.Core().compile_model(path, 'CPU', config)
        request = compiled.create_infer_request()
        run = lambda x: request.infer({0: x}).to_tuple()  # noqa: E731
        run.request, run.compiled = request, compiled
    run.runtime, run.path, run.precision, run.ort_level = runtime, path, precision, ort_level
    return run


def executed_precisions(run: Callable) -> str:
    """What a loaded model executes, read back from the runtime (not the precision asked).

    OpenVINO: the ``runtimePrecision`` of the convolution nodes of the runtime model; ONNX
    Runtime: int8 (``QLinearConv``, ``ConvInteger``) and float convolutions of the graph it
    runs (see :mod:`~mmdet_compconv.deployment.precision`).

    Args:
        run (Callable): a call returned by :func:`load_runtime`.

    Returns:
        str: e.g. ``'Convolution bf16 53'`` or ``'Conv int8 52, float 1; QDQ ...'``.
    """
    if run.runtime == 'openvino':
        return summarize_precisions(openvino_precisions(run.compiled))
    return summarize_precisions(onnxruntime_precisions(
        ort_optimized_op_counts(run.path, run.ort_level)))


def run_onnxruntime(path: str, x: torch.Tensor, threads: int = 1) -> List[np.ndarray]:
    """Run an exported model once with ONNX Runtime on the CPU (see :func:`load_runtime`).

    Args:
        path (str): the ``.onnx`` file.
        x (torch.Tensor): the input.
        threads (int): intra-op threads. Default: 1.

    Returns:
        list[np.ndarray]: the outputs.
    """
    return load_runtime(path, 'onnxruntime', threads)(x.detach().cpu().numpy())


def runtime_profile(path: str, runtime: str, threads: int, x: np.ndarray, rows: int = 10,
                    ort_level: str = 'all', precision: str = 'fp32') -> str:
    """Time per op type of one call, as the runtime itself reports it (ONNX Runtime's
    ``enable_profiling``, OpenVINO's ``PERF_COUNT``), as a Markdown table.

    The model is loaded with :func:`load_runtime`, run once to warm up, then once more; the
    table is of that last run.

    Args:
        path (str): the ``.onnx`` file.
        runtime (str): ``'onnxruntime'`` or ``'openvino'``.
        threads (int): the runtime's threads (see :func:`load_runtime`).
        x (np.ndarray): the input.
        rows (int): how many op types to list, the slowest first. Default: 10.
        ort_level (str): ONNX Runtime's graph optimisation level (see :func:`load_runtime`).
            Default: 'all'.
        precision (str): see :func:`load_runtime`. Default: 'fp32'.

    Returns:
        str: a Markdown table with a row ``| op | seconds | share |`` per op type; the share
        is of the time of all op types, listed or not.
    """
    run = load_runtime(path, runtime, threads, profile=True, ort_level=ort_level,
                       precision=precision)
    run(x)  # warm-up (first-call allocations)
    totals: Counter = Counter()
    if runtime == 'onnxruntime':
        run(x)
        trace = run.session.end_profiling()
        with open(trace) as f:
            events = json.load(f)
        os.remove(trace)
        last = max((ev for ev in events if ev.get('name') == 'model_run'), key=lambda ev: ev['ts'])
        for ev in events:  # the kernels of the last (warm) run only
            if (ev.get('cat') == 'Node' and ev['name'].endswith('_kernel_time')
                    and last['ts'] <= ev['ts'] <= last['ts'] + last['dur']):
                op = ev.get('args', {}).get('op_name', '?')
                totals[op] += ev['dur'] / 1e6
    else:
        run(x)
        for info in run.request.get_profiling_info():
            if info.status.name == 'EXECUTED':
                totals[info.node_type] += info.real_time.total_seconds()
    total = sum(totals.values()) or 1.0
    lines = ['| op | seconds | share |', '|---|---|---|']
    for op, sec in totals.most_common(rows):
        lines.append(f'| {op} | {sec:.4f} | {sec / total:.0%} |')
    return '\n'.join(lines)


def ort_optimized_op_counts(path: str, level: str = 'all') -> Dict[str, int]:
    """Op counts of the graph ONNX Runtime actually runs (after its CPU graph optimisations,
    e.g. the NCHWc layout's ``ReorderInput``/``ReorderOutput``); a structural check, no timing.

    Args:
        path (str): the ``.onnx`` file.
        level (str): the graph optimisation level, one of :data:`ORT_LEVELS`.
            Default: 'all'.

    Returns:
        dict[str, int]: op type -> number of nodes of the optimised graph (see
        :func:`~mmdet_compconv.deployment.op_counts`).

    Raises:
        ValueError: an unknown ``level``.
    """
    import onnxruntime as ort
    if level not in ORT_LEVELS:
        raise ValueError(f'level must be one of {ORT_LEVELS}, got {level!r}')
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                                   f'ORT_ENABLE_{level.upper()}')
        options.optimized_model_filepath = os.path.join(tmp, 'optimized.onnx')
        ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        return op_counts(options.optimized_model_filepath)
