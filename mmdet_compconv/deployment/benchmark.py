"""Timing models against their vanilla twins: models to time, calls, interleaved medians.

``tools/analysis_tools/benchmark_latency.py`` and ``benchmark_layers.py`` are command lines
over these functions. Untrained models are timed with BatchNorm statistics calibrated to their
activations (:func:`calibrated_model`): random statistics let activations shrink into denormal
floats, orders of magnitude slower on x86, which would make any timing meaningless.
"""
from __future__ import annotations

import os
import statistics
import time
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn
from mmengine.config import Config

from ..apis import init_model
from ..models import DenseDetector
from .onnx_export import export_onnx

__all__ = ['cpu_name', 'calibrated_model', 'data_samples', 'predict_with_proposals',
           'part_call', 'export_part', 'interleaved', 'profile_ops', 'train_step_probe']


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string.

    Example:
        >>> isinstance(cpu_name(), str)
        True
    """
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or 'CPU'


def calibrated_model(cfg: Config, model_cfg: Optional[dict] = None) -> nn.Module:
    """A detector with random weights and BN statistics calibrated to its activations.

    Args:
        cfg (Config): the config (its data pipeline and runtime settings are used).
        model_cfg (dict, optional): a model config replacing ``cfg.model`` (e.g. the
            :func:`~mmdet_compconv.deployment.vanilla_twin`). Default: None.

    Returns:
        nn.Module: the detector in eval mode.
    """
    if model_cfg is not None:
        cfg = cfg.copy()
        cfg.model = model_cfg
    model = init_model(cfg)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the calibration batches
    model.train()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(2):
            model.extract_feat(torch.rand(2, 3, 256, 256, generator=g))
    return model.eval()


def data_samples(h: int, w: int, with_gt: bool = False) -> list:
    """One ``DetDataSample`` of an unscaled ``h x w`` image (two boxes when ``with_gt``)."""
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


def predict_with_proposals(model: nn.Module, x: torch.Tensor, samples: list, proposals: list):
    """A two-stage detector's ``predict`` with the RPN run but its proposals replaced.

    RoIAlign's cost grows with the proposals' sizes (mmdet samples each bin adaptively), and
    untrained RPNs propose arbitrary boxes, so both sides of a comparison get the same
    proposals to time the same RoI head work.
    """
    feats = model.extract_feat(x)
    model.rpn_head.predict(feats, samples, rescale=False)
    results = model.roi_head.predict(feats, [p.clone() for p in proposals], samples,
                                     rescale=True)
    return model.add_pred_to_datasample(samples, results)


def part_call(model: nn.Module, part: str, x: torch.Tensor,
              proposals: Optional[list] = None) -> Callable[[], object]:
    """A call of one part of a detector on ``x``.

    Args:
        model (nn.Module): the detector.
        part (str): ``backbone``, ``backbone+neck``, ``tensor`` or ``predict``.
        x (torch.Tensor): the input.
        proposals (list, optional): for ``predict`` of a two-stage detector, the proposals
            its RoI head gets (:func:`predict_with_proposals`). Default: None.

    Returns:
        Callable: a function of no argument.
    """
    h, w = x.shape[-2:]
    samples = data_samples(h, w)
    if part == 'predict' and proposals is not None:
        return lambda: predict_with_proposals(model, x, samples, proposals)
    return {
        'backbone': lambda: model.backbone(x),
        'backbone+neck': lambda: model.neck(model.backbone(x)),
        'tensor': lambda: model._forward(x, samples),
        'predict': lambda: model.predict(x, samples),
    }[part]


def export_part(model: nn.Module, part: str, x: torch.Tensor, path: str) -> str:
    """Export a part of ``model`` to ``path`` (TorchScript exporter, opset 17, static shape of
    ``x``); returns ``path``."""
    return export_onnx(DenseDetector(model, part).eval(), x, path)


def interleaved(fns: Dict[str, Callable[[], object]], warmup: int, repeats: int,
                sync: Callable[[], None] = lambda: None) -> Dict[str, float]:
    """Median seconds of each function, run round-robin (A B A B ...) after a warm-up.

    Drift within a run (other load, frequency changes) affects all functions alike, so
    ratios of the medians are steadier than separate timings.

    Args:
        fns (dict[str, Callable]): the functions to time.
        warmup (int): untimed rounds first.
        repeats (int): timed rounds.
        sync (Callable): called before and after each timed call (``torch.cuda.synchronize``
            on a GPU). Default: a no-op.

    Returns:
        dict[str, float]: the median seconds per function.

    Example:
        >>> sorted(interleaved({'a': lambda: None, 'b': lambda: None}, 1, 3))
        ['a', 'b']
    """
    times: Dict[str, List[float]] = {k: [] for k in fns}
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


def profile_ops(fn: Callable[[], object], rows: int = 8) -> str:
    """Self time per op of one call, as ``torch.profiler`` tabulates it."""
    with torch.inference_mode(), torch.profiler.profile() as prof:
        fn()
    return prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=rows,
                                     max_name_column_width=30)


def train_step_probe(cfg: Config, h: int, w: int, steps: int = 3) -> Dict[str, float]:
    """Median seconds of a training step (loss + backward, batch 1) and the peak memory growth.

    Run it in a fresh process per model: the peak resident memory is the process's.
    """
    import resource

    import psutil
    model = calibrated_model(cfg).train()
    x = torch.rand(1, 3, h, w)
    samples = data_samples(h, w, with_gt=True)
    rss0 = psutil.Process().memory_info().rss
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        losses = model.loss(x, samples)
        sum(v.sum() if torch.is_tensor(v) else sum(t.sum() for t in v)
            for v in losses.values()).backward()
        model.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return dict(step_s=statistics.median(times[1:] or times), peak_mb=(peak - rss0) / 2**20)
