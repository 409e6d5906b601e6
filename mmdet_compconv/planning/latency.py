"""Latency of layers and models on a CPU runtime, at a precision, with a file cache.

A layer is timed in the form that would run inside the model: for ``torch`` the deploy form
(:class:`~mmdet_compconv.DeployedCompConv` with its BatchNorm folded, or the dense conv it
collapses into) in channels_last; for ONNX Runtime and OpenVINO the export form
(:class:`~mmdet_compconv.deployment.ExportCompConv`, output left unshuffled as inside a block,
or :func:`~mmdet_compconv.deployment.dense_export_conv`), exported alone at the input shape
the layer sees. Precision: ``fp32``, or ``bf16`` (PyTorch autocast on the CPU; OpenVINO's
``INFERENCE_PRECISION_HINT`` through :func:`~mmdet_compconv.deployment.load_runtime`);
``int8`` is not planned for here.
"""
from __future__ import annotations

import importlib
import json
import os
import os.path as osp
import tempfile
from contextlib import nullcontext
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from ..cnn import CompConv, DeployedCompConv, collapse_pointwise, collapses
from ..deployment import ExportCompConv, dense_export_conv, export_onnx, load_runtime
from ..deployment.benchmark import cpu_name, interleaved

__all__ = ['PLAN_RUNTIMES', 'PRECISIONS', 'LatencyCache', 'check_runtime', 'runtime_version',
           'environment', 'compiled_call', 'torch_call', 'layer_module', 'layer_key',
           'time_layers']

PLAN_RUNTIMES = ('torch', 'onnxruntime', 'openvino')
PRECISIONS = ('fp32', 'bf16')


def check_runtime(runtime: str, precision: str) -> None:
    """Raise unless ``runtime`` runs at ``precision`` here.

    Args:
        runtime (str): one of :data:`PLAN_RUNTIMES`.
        precision (str): one of :data:`PRECISIONS`.

    Raises:
        ValueError: an unknown runtime or precision, or bf16 on ONNX Runtime (its CPU
            provider has no bf16 convolutions); the message names the value.

    Example:
        >>> check_runtime('onnxruntime', 'int8')
        Traceback (most recent call last):
        ...
        ValueError: --precision must be one of ('fp32', 'bf16') here, got 'int8'
    """
    if runtime not in PLAN_RUNTIMES:
        raise ValueError(f'--runtime must be one of {PLAN_RUNTIMES}, got {runtime!r}')
    if precision not in PRECISIONS:
        raise ValueError(f'--precision must be one of {PRECISIONS} here, got {precision!r}')
    if runtime == 'onnxruntime' and precision != 'fp32':
        raise ValueError(f'--precision {precision!r} is not available with onnxruntime (its '
                         f'CPU provider runs fp32): use torch or openvino')


def runtime_version(runtime: str) -> str:
    """The version of ``torch``, ``onnxruntime`` or ``openvino``.

    Args:
        runtime (str): one of :data:`PLAN_RUNTIMES`.

    Returns:
        str: its ``__version__``.

    Example:
        >>> runtime_version('torch') == torch.__version__
        True
    """
    return str(getattr(importlib.import_module(runtime), '__version__', '?'))


def environment(runtime: str, precision: str, threads: int) -> Dict[str, object]:
    """What a latency depends on besides the layer: the cache key of :class:`LatencyCache`.

    Args:
        runtime (str): one of :data:`PLAN_RUNTIMES`.
        precision (str): one of :data:`PRECISIONS`.
        threads (int): the runtime's threads.

    Returns:
        dict: runtime, version, precision, CPU model name and threads.
    """
    return dict(runtime=runtime, version=runtime_version(runtime), precision=precision,
                cpu=cpu_name(), threads=int(threads))


class LatencyCache:
    """Measured milliseconds in a JSON file, under an environment and a layer key.

    The file maps ``json.dumps(environment, sort_keys=True)`` to ``{layer key: ms}``; the
    environment (:func:`environment`) is the runtime, its version, the precision, the CPU
    model name and the threads, and a layer key (:func:`layer_key`) names the candidate and
    the input shape. Another environment never reads this one's entries.

    Args:
        path (str, optional): the JSON file (created by :meth:`save`); None keeps the cache
            in memory only.
        env (dict): the environment of the measurements to read and write.

    Attributes:
        hits (int): how many :meth:`get` calls found a value.
        misses (int): how many did not.

    Example:
        >>> cache = LatencyCache(None, dict(runtime='torch', threads=1))
        >>> cache.put('dense 64x56x56->64 k3 s1', 1.5)
        >>> cache.get('dense 64x56x56->64 k3 s1'), cache.get('other'), cache.hits
        (1.5, None, 1)
    """

    def __init__(self, path: Optional[str], env: Dict[str, object]) -> None:
        self.path = path
        self.env_key = json.dumps(env, sort_keys=True)
        self.data: Dict[str, Dict[str, float]] = {}
        if path and osp.isfile(path):
            with open(path) as f:
                self.data = json.load(f)
        self.hits = self.misses = 0

    @property
    def entries(self) -> Dict[str, float]:
        """The entries of this environment (layer key -> ms)."""
        return self.data.setdefault(self.env_key, {})

    def get(self, key: str) -> Optional[float]:
        """The cached ms of ``key`` in this environment, or None.

        Args:
            key (str): a :func:`layer_key`.

        Returns:
            float or None: the milliseconds.
        """
        value = self.entries.get(key)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def put(self, key: str, ms: float) -> None:
        """Record ``ms`` for ``key`` in this environment (:meth:`save` writes the file).

        Args:
            key (str): a :func:`layer_key`.
            ms (float): the milliseconds.
        """
        self.entries[key] = float(ms)

    def save(self) -> None:
        """Write the file (every environment it holds), atomically."""
        if not self.path:
            return
        os.makedirs(osp.dirname(osp.abspath(self.path)), exist_ok=True)
        tmp = f'{self.path}.tmp{os.getpid()}'
        with open(tmp, 'w') as f:
            json.dump(self.data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)


def compiled_call(module: nn.Module, x: torch.Tensor, runtime: str, precision: str,
                  threads: int, path: str) -> Callable[[], object]:
    """Export ``module(x)`` to ``path`` and return a call of it by an ONNX runtime.

    Args:
        module (nn.Module): the module, in eval mode.
        x (torch.Tensor): its input (fp32, NCHW).
        runtime (str): ``'onnxruntime'`` or ``'openvino'``.
        precision (str): ``'fp32'``, or ``'bf16'`` (OpenVINO only).
        threads (int): the runtime's threads.
        path (str): the ``.onnx`` file to write.

    Returns:
        Callable[[], object]: a function of no argument that runs the model on ``x``.
    """
    check_runtime(runtime, precision)
    export_onnx(module, x, path)
    run = load_runtime(path, runtime, threads, precision=precision)
    array = x.numpy()
    return lambda: run(array)


def torch_call(module: nn.Module, x: torch.Tensor, precision: str) -> Callable[[], object]:
    """A call of ``module`` on ``x`` in channels_last, at ``precision`` (bf16: autocast).

    Args:
        module (nn.Module): the module, in eval mode (converted to channels_last in place).
        x (torch.Tensor): its fp32 input.
        precision (str): ``'fp32'`` or ``'bf16'``.

    Returns:
        Callable[[], object]: a function of no argument.
    """
    check_runtime('torch', precision)
    module.to(memory_format=torch.channels_last)
    x = x.to(memory_format=torch.channels_last)
    if precision == 'bf16':
        x = x.to(torch.bfloat16)  # inside a bf16 model the previous layer's output is bf16

    def call():
        with torch.autocast('cpu', torch.bfloat16) if precision == 'bf16' else nullcontext():
            return module(x)
    return call


def layer_module(conv: nn.Module, runtime: str, collapse_above: Optional[float]) -> nn.Module:
    """The form of a layer (a conv and the BatchNorm after it) that ``runtime`` runs.

    Args:
        conv (nn.Module): an ``nn.Conv2d`` or a CompConv (train form), on the CPU.
        runtime (str): one of :data:`PLAN_RUNTIMES`.
        collapse_above (float, optional): see :func:`~mmdet_compconv.switch_to_deploy`.

    Returns:
        nn.Module: an ``nn.Conv2d`` with the BN folded, a
        :class:`~mmdet_compconv.DeployedCompConv` (torch) or an
        :class:`~mmdet_compconv.deployment.ExportCompConv` (ONNX runtimes), in eval mode.
    """
    norm = nn.BatchNorm2d(conv.out_channels).eval()
    split = isinstance(conv, CompConv) and conv.depth > 0 and not collapses(conv, collapse_above)
    if not split:
        if isinstance(conv, CompConv) and conv.depth > 0:
            return collapse_pointwise(conv.eval(), norm).eval()
        return dense_export_conv(conv.eval(), norm).eval()
    if runtime == 'torch':
        return DeployedCompConv(conv.eval(), norm).eval()
    return ExportCompConv(conv.eval(), norm).eval()


def layer_key(conv: nn.Module, in_shape: Tuple[int, ...],
              collapse_above: Optional[float]) -> str:
    """The cache key of a layer: its structure and input shape (C, H, W).

    Args:
        conv (nn.Module): an ``nn.Conv2d`` or a CompConv.
        in_shape (tuple[int, ...]): the input shape (N, C, H, W) or (C, H, W).
        collapse_above (float, optional): see :func:`~mmdet_compconv.switch_to_deploy`;
            a CompConv that collapses is keyed as the dense conv it becomes.

    Returns:
        str: e.g. ``'dense 64x56x56->64 k3 s1 d1'`` or ``'compconv depth=1 C_p=32
        tail=depthwise 64x56x56->64 k3 s1 d1'``.

    Example:
        >>> layer_key(nn.Conv2d(64, 64, 3, padding=1), (1, 64, 56, 56), 0.15)
        'dense 64x56x56->64 k3 s1 d1'
    """
    c, h, w = in_shape[-3:]
    geometry = (f'{c}x{h}x{w}->{conv.out_channels} k{conv.kernel_size[0]} s{conv.stride[0]} '
                f'd{conv.dilation[0]}')
    if isinstance(conv, CompConv) and conv.depth > 0 and not collapses(conv, collapse_above):
        return (f'compconv depth={conv.depth} C_p={conv.prim_channels} tail={conv.tail_type} '
                f'shuffle={int(conv.with_shuffle)} {geometry}')
    return f'dense {geometry}'


def time_layers(convs: Dict[str, Tuple[nn.Module, Tuple[int, ...]]], runtime: str,
                precision: str, threads: int, cache: LatencyCache,
                collapse_above: Optional[float], warmup: int = 2, repeats: int = 7,
                progress: Optional[Callable[[int], None]] = None) -> Dict[str, float]:
    """Milliseconds of each conv's runtime form, from ``cache`` or measured.

    Convs of equal :func:`layer_key` are measured once; those with the same input shape (the
    candidates of one layer) are timed together, interleaved (A B A B ...). New measurements
    are put in the cache (call :meth:`LatencyCache.save`).

    Args:
        convs (dict[str, tuple[nn.Module, tuple[int, ...]]]): a name -> (conv, input shape).
        runtime (str): one of :data:`PLAN_RUNTIMES`.
        precision (str): one of :data:`PRECISIONS`.
        threads (int): the runtime's threads (torch: ``torch.set_num_threads``).
        cache (LatencyCache): the cache of this environment.
        collapse_above (float, optional): see :func:`~mmdet_compconv.switch_to_deploy`.
        warmup (int): untimed rounds. Default: 2.
        repeats (int): timed rounds (the median is kept). Default: 7.
        progress (Callable[[int], None], optional): called with the number of layers done
            after each (a progress bar's ``update``). Default: None.

    Returns:
        dict[str, float]: name -> milliseconds.
    """
    check_runtime(runtime, precision)
    keys = {name: layer_key(conv, shape, collapse_above) for name, (conv, shape) in convs.items()}
    ms: Dict[str, float] = {}
    todo: Dict[str, List[str]] = {}
    cached: Dict[str, float] = {}
    for name, key in keys.items():
        if key not in cached and key not in todo:  # one look-up per distinct key
            value = cache.get(key)
            if value is None:
                todo[key] = []
            else:
                cached[key] = value
        if key in todo:
            todo[key].append(name)
            continue
        ms[name] = cached[key]
        if progress:
            progress(1)
    if runtime == 'torch':
        torch.set_num_threads(threads)
    # the candidates of one layer (same input shape) are timed together, interleaved
    by_shape: Dict[tuple, List[str]] = {}
    for key, names in todo.items():
        by_shape.setdefault(tuple(convs[names[0]][1][-3:]), []).append(key)
    with tempfile.TemporaryDirectory() as tmp:
        for i, (shape, group) in enumerate(by_shape.items()):
            x = torch.rand(1, *shape, generator=torch.Generator().manual_seed(i))
            fns = {}
            for j, key in enumerate(group):
                module = layer_module(convs[todo[key][0]][0], runtime, collapse_above)
                fns[key] = (torch_call(module, x, precision) if runtime == 'torch' else
                            compiled_call(module, x, runtime, precision, threads,
                                          osp.join(tmp, f'layer{i}_{j}.onnx')))
            for key, value in interleaved(fns, warmup, repeats).items():
                cache.put(key, 1000 * value)
                for name in todo[key]:
                    ms[name] = 1000 * value
                if progress:
                    progress(len(todo[key]))
    return {name: ms[name] for name in convs}
