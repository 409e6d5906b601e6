"""ONNX export of CompConv detectors with plain ``torch.onnx`` and a check against PyTorch.

mmdeploy 1.3.1 cannot export mmdet models on torch 2.13 (``shared/docs/wave2-notes.md``), so
the split mmdeploy uses is done here: :class:`DenseDetector` is the backbone, the neck and the
dense head (``tensor`` mode); box decoding and NMS are left to the caller. Both of torch's
exporters are supported: the TorchScript one (``dynamo=False``, what most scripts use) and
the dynamo one (needs ``onnxscript``). ``onnx`` and ``onnxruntime`` are imported only when
used.
"""
from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

PARTS = ('backbone', 'backbone+neck', 'tensor')


class DenseDetector(nn.Module):
    """The exportable part of an mmdet detector, with a flat tuple of tensors as output.

    Args:
        detector: an mmdet detector (its ``backbone``, ``neck`` and ``rpn_head`` or
            ``bbox_head`` are used).
        part: ``'backbone'``, ``'backbone+neck'`` or ``'tensor'`` (backbone, neck and the
            dense head: the RPN head of a two-stage detector, the box head of a one-stage one).

    Raises:
        ValueError: an unknown part, or a part the detector does not have.

    Example:
        >>> from mmdet.models.backbones import ResNet
        >>> det = nn.Module(); det.backbone = ResNet(18, base_channels=8)
        >>> [tuple(t.shape) for t in DenseDetector(det, 'backbone').eval()(torch.rand(1, 3, 32, 32))]
        [(1, 8, 8, 8), (1, 16, 4, 4), (1, 32, 2, 2), (1, 64, 1, 1)]
    """

    def __init__(self, detector: nn.Module, part: str = 'tensor') -> None:
        super().__init__()
        if part not in PARTS:
            raise ValueError(f'part must be one of {PARTS}, got {part!r}')
        self.part = part
        self.backbone = detector.backbone
        need_neck = part != 'backbone'
        if need_neck and getattr(detector, 'neck', None) is None:
            raise ValueError(f'part={part!r} needs a neck, but {type(detector).__name__} has none')
        self.neck = detector.neck if need_neck else None
        self.head = None
        if part == 'tensor':
            self.head = getattr(detector, 'rpn_head', None) or getattr(detector, 'bbox_head', None)
            if self.head is None:
                raise ValueError(f'part="tensor" needs a dense head (rpn_head or bbox_head), but '
                                 f'{type(detector).__name__} has neither')

    def output_names(self, x: torch.Tensor) -> List[str]:
        """Names of the flat outputs for input ``x`` (e.g. ``cls_score_0, ..., bbox_pred_4``)."""
        with torch.no_grad():
            outs = self._nested(x)
        if self.head is None:
            return [f'{"feat" if self.neck is not None else "stage"}_{i}' for i in range(len(outs))]
        kinds = ('cls_score', 'bbox_pred', 'extra')
        return [f'{kinds[min(k, 2)]}{"" if k < 2 else k}_{i}' for k, level in enumerate(outs)
                for i in range(len(level))]

    def _nested(self, x: torch.Tensor):
        feats = self.backbone(x)
        if self.neck is not None:
            feats = self.neck(feats)
        return tuple(feats) if self.head is None else self.head(feats)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outs = self._nested(x)
        if self.head is None:
            return tuple(outs)
        return tuple(t for level in outs for t in level)


def export_onnx(module: nn.Module,
                x: torch.Tensor,
                path: str,
                dynamo: bool = False,
                opset: int = 17,
                dynamic: bool = False,
                output_names: Optional[Sequence[str]] = None) -> str:
    """Export ``module(x)`` to ONNX at ``path`` with one of torch's exporters.

    Args:
        module: the model in eval mode.
        x: an example input (N, C, H, W).
        path: the ``.onnx`` file to write.
        dynamo: use the dynamo exporter (needs ``onnxscript``) instead of TorchScript.
        opset: the ONNX opset.
        dynamic: make the batch, height and width of the input dynamic.
        output_names: names of the outputs.

    Returns:
        ``path``.

    Raises:
        ValueError: a module in training mode.
        RuntimeError: the exporter failed (the message names the exporter and the cause).
    """
    if module.training:
        raise ValueError('export the model in eval mode: call model.eval() first')
    kwargs = dict(input_names=['input'], output_names=list(output_names) if output_names else None,
                  opset_version=opset, dynamo=dynamo)
    if dynamic and dynamo:
        d = torch.export.Dim.DYNAMIC
        kwargs['dynamic_shapes'] = ({0: d, 2: d, 3: d}, )
    elif dynamic:
        kwargs['dynamic_axes'] = {'input': {0: 'batch', 2: 'height', 3: 'width'}}
    if dynamo:
        kwargs.update(external_data=False, verbose=False)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    name = 'dynamo' if dynamo else 'TorchScript'
    try:
        with torch.no_grad():
            torch.onnx.export(module, (x, ), path, **kwargs)
    except Exception as e:  # the exporters raise many types; say which one failed, keep cause
        raise RuntimeError(f'the {name} ONNX exporter (opset {opset}) failed on '
                           f'{type(module).__name__}: {type(e).__name__}: {e}') from e
    return path


def run_onnxruntime(path: str, x: torch.Tensor, threads: Optional[int] = None) -> List[np.ndarray]:
    """Run an exported model once with ONNX Runtime on the CPU."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    return session.run(None, {session.get_inputs()[0].name: x.detach().cpu().numpy()})


def max_abs_error(expected: Sequence[torch.Tensor], actual: Sequence[np.ndarray]) -> float:
    """The largest absolute difference between PyTorch outputs and a runtime's.

    Raises:
        ValueError: different numbers of outputs or different shapes.

    Example:
        >>> max_abs_error([torch.ones(2)], [np.array([1.0, 1.5], dtype=np.float32)])
        0.5
    """
    if len(expected) != len(actual):
        raise ValueError(f'{len(expected)} PyTorch outputs but {len(actual)} runtime outputs')
    err = 0.0
    for i, (e, a) in enumerate(zip(expected, actual)):
        if tuple(e.shape) != tuple(a.shape):
            raise ValueError(f'output {i}: PyTorch shape {tuple(e.shape)}, runtime shape '
                             f'{tuple(a.shape)}')
        err = max(err, float((e.detach().cpu() - torch.from_numpy(np.asarray(a))).abs().max()))
    return err


def op_counts(path: str) -> dict:
    """How many nodes of each ONNX op type the exported graph has (top-level graph).

    Example (a model with one Conv)::

        op_counts('conv.onnx')  # {'Conv': 1}
    """
    import onnx
    counts: dict = {}
    for node in onnx.load(path, load_external_data=False).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


RUNTIMES = ('onnxruntime', 'openvino')


ORT_LEVELS = ('all', 'extended', 'basic')


def load_runtime(path: str, runtime: str, threads: int, profile: bool = False,
                 ort_level: str = 'all'):
    """Compile an exported model for a CPU runtime; returns ``run(x: np.ndarray) -> outputs``.

    ONNX Runtime: graph optimisations up to ``ort_level`` (``'all'`` includes the NCHWc layout
    transformer, ``'extended'`` stops before it), ``threads`` intra-op threads, one inter-op
    thread.
    OpenVINO: the CPU plugin, ``threads`` inference threads, latency hint, and fp32 inference
    precision (OpenVINO would otherwise pick bf16 on CPUs that have it).

    Raises:
        ValueError: an unknown runtime.
        ImportError: the runtime is not installed (``pip install .[deploy]`` for OpenVINO).
    """
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
        return run
    if runtime == 'openvino':
        try:
            import openvino as ov
        except ImportError as e:
            raise ImportError('the openvino runtime is an optional extra: pip install '
                              '"mmdet-compconv[deploy]" (or openvino)') from e
        config = {'INFERENCE_NUM_THREADS': threads, 'PERFORMANCE_HINT': 'LATENCY',
                  'INFERENCE_PRECISION_HINT': 'f32'}
        if profile:
            config['PERF_COUNT'] = True
        compiled = ov.Core().compile_model(path, 'CPU', config)
        request = compiled.create_infer_request()
        run = lambda x: request.infer({0: x}).to_tuple()  # noqa: E731
        run.request = request
        return run
    raise ValueError(f'runtime must be one of {RUNTIMES}, got {runtime!r}')


def runtime_profile(path: str, runtime: str, threads: int, x: np.ndarray, rows: int = 10,
                    ort_level: str = 'all') -> str:
    """Time per op type of one call, as the runtime itself reports it (ONNX Runtime's
    ``enable_profiling``, OpenVINO's ``PERF_COUNT``), as a Markdown table."""
    run = load_runtime(path, runtime, threads, profile=True, ort_level=ort_level)
    run(x)  # warm-up (first-call allocations)
    totals: dict = {}
    if runtime == 'onnxruntime':
        import json
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
                totals[op] = totals.get(op, 0.0) + ev['dur'] / 1e6
    else:
        run(x)
        for info in run.request.get_profiling_info():
            if info.status.name == 'EXECUTED':
                totals[info.node_type] = (totals.get(info.node_type, 0.0) +
                                          info.real_time.total_seconds())
    total = sum(totals.values()) or 1.0
    lines = ['| op | seconds | share |', '|---|---|---|']
    for op, sec in sorted(totals.items(), key=lambda kv: -kv[1])[:rows]:
        lines.append(f'| {op} | {sec:.4f} | {sec / total:.0%} |')
    return '\n'.join(lines)


def ort_optimized_op_counts(path: str, level: str = 'all') -> dict:
    """Op counts of the graph ONNX Runtime actually runs (after its CPU graph optimisations,
    e.g. the NCHWc layout's ``ReorderInput``/``ReorderOutput``); a structural check, no timing.
    """
    import tempfile

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
