"""Numeric precision as a deployment axis: what the CPU offers and what a runtime executed.

A runtime asked for bf16 or int8 may run some ops, or all, in another precision (OpenVINO
falls back to f32 on a CPU without bf16 instructions and keeps some ops of an int8 model in
bf16 or f32; ONNX Runtime leaves a quantized Conv in float when it cannot fuse its Q/DQ pair).
So every figure is reported with the precision *read back* from what ran:

* OpenVINO: the ``runtimePrecision`` of each node of ``compiled.get_runtime_model()``;
* ONNX Runtime: the op types of the graph it runs after its optimisations (``QLinearConv`` /
  ``ConvInteger`` are int8 convolutions; ``Conv`` / ``FusedConv`` float ones);
* PyTorch: the dtype of every convolution's output, recorded by a
  :class:`torch.overrides.TorchFunctionMode` around one call (it sees the ``F.conv2d`` calls of
  ``nn.Conv2d`` and of the deployed / export CompConv forms alike).
"""
from __future__ import annotations

from collections import Counter
from typing import Callable, Dict, List, Mapping

import torch
import torch.nn.functional as F

__all__ = ['PRECISIONS', 'ISA_FLAGS', 'cpu_isa', 'isa_summary', 'openvino_precisions',
           'onnxruntime_precisions', 'torch_conv_dtypes', 'summarize_precisions']

#: The precisions the tools take: float32, bfloat16, int8 (post-training quantized).
PRECISIONS = ('fp32', 'bf16', 'int8')

#: ``/proc/cpuinfo`` flag -> the instruction set name the tables print, in print order.
ISA_FLAGS = {
    'avx2': 'AVX2',
    'avx512f': 'AVX-512',
    'avx_vnni': 'AVX-VNNI',
    'avx512_vnni': 'AVX512_VNNI',
    'avx512_bf16': 'AVX512_BF16',
    'avx512_fp16': 'AVX512_FP16',
    'amx_bf16': 'AMX-BF16',
    'amx_int8': 'AMX-INT8',
}

#: OpenVINO runtime layer types counted as convolutions.
_OV_CONVS = ('Convolution', 'GroupConvolution', 'Deconvolution', 'FullyConnected')


def cpu_isa(cpuinfo: str = '/proc/cpuinfo') -> List[str]:
    """The vector / matrix instruction sets of the CPU that matter for fp32, bf16 and int8.

    Args:
        cpuinfo (str): the file to read the ``flags`` line of. Default: '/proc/cpuinfo'.

    Returns:
        list[str]: names of :data:`ISA_FLAGS` the CPU has (e.g. ``['AVX2', 'AVX-512',
        'AVX512_VNNI', 'AVX512_BF16', 'AMX-BF16', 'AMX-INT8']``), empty when the file cannot
        be read (not Linux).

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile('w', suffix='cpuinfo', delete=False) as f:
        ...     _ = f.write('flags\\t\\t: fpu avx2 avx512f avx512_vnni amx_int8\\n')
        >>> cpu_isa(f.name)
        ['AVX2', 'AVX-512', 'AVX512_VNNI', 'AMX-INT8']
    """
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(':', 1)[1].split() for line in f
                          if line.startswith('flags')), [])
    except OSError:
        return []
    return [name for flag, name in ISA_FLAGS.items() if flag in flags]


def isa_summary() -> str:
    """``'ISA: AVX2, AVX-512, ...'`` for a table header, naming what bf16 and int8 lack.

    Example:
        >>> isa_summary().startswith('ISA: ')
        True
    """
    isa = cpu_isa()
    missing = [n for n in ('AVX512_BF16', 'AMX-BF16', 'AVX512_VNNI', 'AMX-INT8') if n not in isa]
    return 'ISA: ' + (', '.join(isa) or 'unknown') + (
        f' (no {", ".join(missing)})' if missing and isa else '')


def openvino_precisions(compiled, types: tuple = _OV_CONVS) -> Dict[str, Counter]:
    """The precisions an OpenVINO compiled model executes, per runtime layer type.

    Args:
        compiled (openvino.CompiledModel): the compiled model.
        types (tuple): the runtime layer types to count (e.g. ``('Convolution', )``); empty:
            all. Default: the convolution types (``Convolution``, ``GroupConvolution``,
            ``Deconvolution``, ``FullyConnected``).

    Returns:
        dict[str, Counter]: layer type -> ``Counter`` of ``runtimePrecision`` (``'f32'``,
        ``'bf16'``, ``'u8'``, ``'i8'``...), as the runtime graph's nodes report it.
    """
    out: Dict[str, Counter] = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        rt = op.get_rt_info()
        kind = rt['layerType'].astype(str) if 'layerType' in rt else op.get_type_name()
        if types and kind not in types:
            continue
        prec = rt['runtimePrecision'].astype(str) if 'runtimePrecision' in rt else '?'
        out.setdefault(kind, Counter())[prec] += 1
    return out


def onnxruntime_precisions(counts: Mapping[str, int]) -> Dict[str, Counter]:
    """Convolutions of an ONNX Runtime optimised graph, by precision.

    Args:
        counts (Mapping[str, int]): op type -> count of the graph ONNX Runtime runs
            (:func:`~mmdet_compconv.deployment.ort_optimized_op_counts`).

    Returns:
        dict[str, Counter]: ``{'Conv': Counter(int8=..., float=...)}`` (``QLinearConv`` and
        ``ConvInteger`` are int8; ``Conv``, ``FusedConv`` and ``NhwcFusedConv`` float), plus
        the Q/DQ ops left in the graph under ``'QDQ'``.

    Example:
        >>> onnxruntime_precisions({'QLinearConv': 3, 'FusedConv': 1, 'QuantizeLinear': 2})
        {'Conv': Counter({'int8': 3, 'float': 1}), 'QDQ': Counter({'QuantizeLinear': 2})}
    """
    conv = Counter()
    for op in ('QLinearConv', 'ConvInteger'):
        conv['int8'] += counts.get(op, 0)
    for op in ('Conv', 'FusedConv', 'NhwcFusedConv'):
        conv['float'] += counts.get(op, 0)
    qdq = Counter({op: counts[op] for op in ('QuantizeLinear', 'DequantizeLinear')
                   if counts.get(op)})
    return {'Conv': +conv, **({'QDQ': qdq} if qdq else {})}


def torch_conv_dtypes(fn: Callable[[], object]) -> Counter:
    """The dtypes of every 2-D convolution output in one call of ``fn``.

    Args:
        fn (Callable[[], object]): the call, e.g. ``lambda: model(x)`` inside autocast.

    Returns:
        Counter: dtype name (``'bfloat16'``, ``'float32'``) -> number of convolutions.

    Example:
        >>> conv = torch.nn.Conv2d(3, 4, 3)
        >>> def call():
        ...     with torch.autocast('cpu', torch.bfloat16):
        ...         return conv(torch.rand(1, 3, 8, 8))
        >>> torch_conv_dtypes(call)
        Counter({'bfloat16': 1})
    """
    seen: Counter = Counter()

    class Record(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func in (F.conv2d, torch.conv2d) and torch.is_tensor(out):
                seen[str(out.dtype).replace('torch.', '')] += 1
            return out

    with torch.no_grad(), Record():
        fn()
    return seen


def summarize_precisions(found: Mapping[str, Mapping[str, int]]) -> str:
    """One line of read-back precisions: ``'Convolution bf16 53; GroupConvolution bf16 16'``.

    Args:
        found (Mapping[str, Mapping[str, int]]): kind -> precision -> count (the output of
            :func:`openvino_precisions`, :func:`onnxruntime_precisions`, or
            ``{'conv': torch_conv_dtypes(...)}``).

    Returns:
        str: the kinds in order, each with its precisions, the most frequent first.

    Example:
        >>> summarize_precisions({'Convolution': {'u8': 50, 'bf16': 3}, 'Pool': {}})
        'Convolution u8 50, bf16 3'
    """
    parts = []
    for kind, precs in found.items():
        if precs:
            parts.append(f'{kind} ' + ', '.join(f'{p} {n}' for p, n in
                                                Counter(precs).most_common()))
    return '; '.join(parts) or 'none'
