"""Evaluating an exported (or quantized) model with mmdet's own test loop and evaluator.

The runtime runs the exported backbone (and neck); the rest of the detector (RPN / RoI heads,
box decoding, NMS) stays in PyTorch. :func:`use_runtime_features` swaps the runtime in place
of the detector's ``backbone`` (and its ``neck`` for a pass-through), so ``extract_feat`` and
everything mmengine's ``Runner.test`` calls around it (data preprocessor, ``predict``, the
COCO metric) are unchanged.
"""
from __future__ import annotations

import os
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from ..models import DenseDetector
from .forms import model_form
from .onnx_export import export_onnx
from .precision import PRECISIONS
from .quantize import quantize_model

__all__ = ['RuntimeFeatures', 'use_runtime_features', 'runtime_model_file']

#: The parts whose outputs :func:`use_runtime_features` can feed back to a detector.
FEATURE_PARTS = ('backbone', 'backbone+neck')


class RuntimeFeatures(nn.Module):
    """A module whose forward is a runtime call: ``x`` -> the runtime's outputs as tensors.

    A batch is run one image at a time (models exported with a static batch of 1 take it; a
    static model fails on an image of another size, with the runtime's error) and the outputs
    are concatenated.

    Args:
        run (Callable[[np.ndarray], Sequence[np.ndarray]]): the runtime call
            (:func:`~mmdet_compconv.deployment.load_runtime`).
        num_outputs (int, optional): the number of outputs the detector expects; a runtime
            returning another number raises. Default: None (not checked).

    Example:
        >>> m = RuntimeFeatures(lambda x: [x * 2, x[:, :1]], num_outputs=2)
        >>> [tuple(t.shape) for t in m(torch.ones(2, 3, 4, 4))]
        [(2, 3, 4, 4), (2, 1, 4, 4)]
    """

    def __init__(self, run: Callable, num_outputs: Optional[int] = None) -> None:
        super().__init__()
        self.run = run
        self.num_outputs = num_outputs

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        array = x.detach().cpu().float().numpy()
        per_image = [self.run(np.ascontiguousarray(array[i:i + 1])) for i in range(len(array))]
        if self.num_outputs is not None and len(per_image[0]) != self.num_outputs:
            raise RuntimeError(f'the runtime returned {len(per_image[0])} outputs, the detector '
                               f'expects {self.num_outputs}: was the model exported with '
                               'another part?')
        return tuple(torch.from_numpy(np.concatenate([np.asarray(o[k], dtype=np.float32)
                                                      for o in per_image])).to(x.device)
                     for k in range(len(per_image[0])))


class _PassThrough(nn.Module):
    """The neck's place when the runtime already ran it."""

    def forward(self, feats):
        return feats


def use_runtime_features(detector: nn.Module, run: Callable,
                         part: str = 'backbone+neck') -> nn.Module:
    """Replace a detector's backbone (and neck) by a runtime running their export, in place.

    Args:
        detector (nn.Module): an mmdet detector whose ``extract_feat`` is
            ``neck(backbone(x))`` (or ``backbone(x)``).
        run (Callable): the runtime call of the exported part
            (:func:`~mmdet_compconv.deployment.load_runtime`), whose outputs are the
            backbone's stages (``part='backbone'``) or the neck's levels.
        part (str): ``'backbone'`` or ``'backbone+neck'``. Default: 'backbone+neck'.

    Returns:
        nn.Module: ``detector``, with ``backbone`` a :class:`RuntimeFeatures` and ``neck`` a
        pass-through (``backbone+neck``); the number of outputs is checked on each call.

    Raises:
        ValueError: another part, or ``backbone+neck`` for a detector without a neck.
    """
    if part not in FEATURE_PARTS:
        raise ValueError(f'part must be one of {FEATURE_PARTS} (the runtime replaces '
                         f'extract_feat; heads stay in PyTorch), got {part!r}')
    neck = getattr(detector, 'neck', None)
    if part == 'backbone+neck' and not isinstance(neck, nn.Module):
        raise ValueError(f'part backbone+neck: {type(detector).__name__} has no neck')
    if part == 'backbone+neck':
        outputs = getattr(neck, 'num_outs', None)
        detector.neck = _PassThrough()
    else:
        outputs = len(getattr(detector.backbone, 'out_indices', ())) or None
    detector.backbone = RuntimeFeatures(run, outputs)
    return detector


def runtime_model_file(model: nn.Module, part: str, form: str, collapse_above: Optional[float],
                       runtime: str, precision: str, out: str,
                       example: np.ndarray,
                       calibration: Optional[Sequence[np.ndarray]] = None,
                       dynamic: bool = False) -> str:
    """Export a part of a detector for a runtime and precision (quantizing it for int8).

    The float model is exported with the TorchScript exporter, opset 17, at the static shape
    of ``example`` (or with a dynamic batch, height and width). OpenVINO int8 is always
    quantized at the calibration inputs' static shape (see
    :func:`~mmdet_compconv.deployment.quantize_model`).

    Args:
        model (nn.Module): the detector as trained (eval mode); it is not changed (the form is
            built on a copy, :func:`~mmdet_compconv.deployment.model_form`).
        part (str): ``'backbone'``, ``'backbone+neck'`` or ``'tensor'``
            (:class:`~mmdet_compconv.models.DenseDetector`).
        form (str): one of :data:`~mmdet_compconv.deployment.FORMS`.
        collapse_above (float, optional): see
            :func:`~mmdet_compconv.deployment.model_form`.
        runtime (str): ``'openvino'`` or ``'onnxruntime'``.
        precision (str): one of :data:`~mmdet_compconv.deployment.PRECISIONS`.
        out (str): the file to write: the float ``.onnx``, or for int8 the quantized model
            (``.xml`` for OpenVINO, ``.onnx`` for ONNX Runtime; the float export is written
            next to it as ``<stem>_float.onnx``).
        example (np.ndarray): an input (1, 3, H, W): the export's static shape.
        calibration (Sequence[np.ndarray], optional): calibration inputs
            (:func:`~mmdet_compconv.deployment.calibration_inputs`), needed for int8.
            Default: None.
        dynamic (bool): export with a dynamic batch, height and width. Default: False.

    Returns:
        str: ``out``.

    Raises:
        ValueError: int8 without calibration inputs, or an unknown precision.
    """
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    if precision == 'int8' and not calibration:
        raise ValueError('int8 needs calibration inputs (images for post-training '
                         'quantization: --calib DIR)')
    x = torch.from_numpy(np.ascontiguousarray(example))
    net = DenseDetector(model_form(model, form, collapse_above), part).eval()
    float_path = out if precision != 'int8' else os.path.splitext(out)[0] + '_float.onnx'
    export_onnx(net, x, float_path, dynamic=dynamic, output_names=net.output_names(x))
    if precision == 'int8':
        quantize_model(float_path, runtime, calibration, out)
    return out
