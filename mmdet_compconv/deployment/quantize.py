"""Post-training int8 quantization of exported models, with calibration images read the way
the config's test pipeline reads them.

* OpenVINO: NNCF's ``nncf.quantize`` on the model read from ONNX (FakeQuantize ops in the IR;
  the CPU plugin runs the convolutions they wrap in u8/i8), saved as ``.xml`` + ``.bin``. A
  model with a dynamic input shape is first reshaped to the calibration inputs' static shape:
  with OpenVINO 2026.4.1 and NNCF 3.4.0 the int8 model of a dynamic-shape export gave wrong
  outputs (relative error 0.5-1.0 against the float model, against 0.03-0.09 for the same
  export at a static shape, ResNet-18 FPN backbones);
* ONNX Runtime: ``onnxruntime.quantization.quantize_static`` in the QDQ format (u8
  activations, per-channel s8 weights, MinMax calibration) after its ``quant_pre_process``;
  ONNX Runtime fuses each DequantizeLinear-Conv-QuantizeLinear into a ``QLinearConv``. Every
  op type of its default set is quantized but ``BatchNormalization``: the only ones left in an
  export form are the affines after the CompConv Concats (a vanilla model has none), whose
  input holds raw pieces of very different ranges; one u8 scale for all of them cost the
  CompConv shapes Faster R-CNN 1.3 mAP and 0.30 relative error of the FPN outputs, against
  0.07 with the affine left in float (docs/deployment.md).

Both need ``nncf`` / ``onnxruntime`` only when called. PyTorch int8 is not offered: its CPU
paths (eager / FX ``torch.ao.quantization``, deprecated; PT2E with the X86 Inductor quantizer,
which needs ``torch.compile`` to produce int8 kernels) do not apply to the deployed CompConv,
which calls ``F.conv2d`` on its own weights and writes its pieces with ``out=``.
"""
from __future__ import annotations

import os
import tempfile
from typing import List, Optional, Sequence, Tuple

import numpy as np

__all__ = ['calibration_inputs', 'quantize_model', 'quantized_ops']


def calibration_inputs(cfg, data_root: str, num: int = 32,
                       size: Optional[Tuple[int, int]] = None) -> List[np.ndarray]:
    """Model inputs of the first ``num`` images of a folder, as the config's test pipeline and
    data preprocessor make them (normalised, padded; batch 1).

    The images are read by :class:`~mmdet_compconv.datasets.UnlabeledImageDataset` (a folder,
    recursively) with the config's ``test_dataloader`` pipeline, its ``LoadAnnotations``
    dropped (no labels are needed).

    Args:
        cfg (mmengine.Config): the detector's config.
        data_root (str): the folder of calibration images.
        num (int): how many images (fewer when the folder has fewer). Default: 32.
        size (tuple[int, int], optional): ``(H, W)``: resize every image to exactly this size
            (the pipeline's ``Resize`` replaced by one with ``keep_ratio=False``), for a model
            exported with a static shape. Default: None (the pipeline's own resize).

    Returns:
        list[np.ndarray]: float32 arrays of shape (1, 3, H', W').

    Raises:
        ValueError: ``num`` < 1, or a size for a pipeline without a ``Resize``.
        FileNotFoundError: the folder does not exist (from the dataset).
    """
    import torch
    from mmdet.registry import MODELS
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DefaultScope

    from ..datasets import UnlabeledImageDataset
    if num < 1:
        raise ValueError(f'num must be at least 1, got {num}')
    pipeline = [dict(t) for t in cfg.test_dataloader.dataset.pipeline
                if t['type'] not in ('LoadAnnotations', 'mmdet.LoadAnnotations')]
    if size is not None:
        resizes = [t for t in pipeline if t['type'].split('.')[-1] == 'Resize']
        if not resizes:
            raise ValueError('size needs a Resize in the test pipeline, found '
                             f'{[t["type"] for t in pipeline]}')
        resizes[0].update(scale=(size[1], size[0]), keep_ratio=False)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        dataset = UnlabeledImageDataset(data_root=data_root, pipeline=pipeline)
        preprocessor = MODELS.build(cfg.model.data_preprocessor)
    inputs = []
    with torch.no_grad():
        for i in range(min(num, len(dataset))):
            batch = preprocessor(pseudo_collate([dataset[i]]), False)
            inputs.append(batch['inputs'].float().numpy())
    return inputs


def quantized_ops(path: str) -> int:
    """How many quantization ops a model file holds (0: a float model).

    Args:
        path (str): an OpenVINO ``.xml`` (counts ``FakeQuantize``) or an ``.onnx``
            (counts ``QuantizeLinear``, ``DequantizeLinear``, ``QLinearConv``,
            ``ConvInteger``).

    Returns:
        int: the count.
    """
    if path.endswith('.xml'):
        import openvino as ov
        return sum(op.get_type_name() == 'FakeQuantize'
                   for op in ov.Core().read_model(path).get_ordered_ops())
    from .onnx_export import op_counts
    counts = op_counts(path)
    return sum(counts.get(op, 0) for op in
               ('QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'ConvInteger'))


def quantize_model(path: str, runtime: str, inputs: Sequence[np.ndarray], out: str) -> str:
    """Quantize an exported float model to int8 for a runtime (post-training, static).

    Args:
        path (str): the float ``.onnx``.
        runtime (str): ``'openvino'`` (NNCF, writes ``out`` as an ``.xml`` + ``.bin``) or
            ``'onnxruntime'`` (QDQ ``.onnx``).
        inputs (Sequence[np.ndarray]): calibration inputs (:func:`calibration_inputs`),
            each a valid input of the model.
        out (str): the file to write: ``.xml`` for OpenVINO, ``.onnx`` for ONNX Runtime;
            its folder is created.

    Returns:
        str: ``out``.

    Raises:
        ValueError: an unknown runtime, a wrong suffix for ``out``, no calibration input, a
            model that is already quantized, or (OpenVINO) a dynamic-shape model with
            calibration inputs of several shapes.
        ImportError: nncf / openvino is not installed (OpenVINO).
    """
    suffix = {'openvino': '.xml', 'onnxruntime': '.onnx'}
    if runtime not in suffix:
        raise ValueError(f'runtime must be one of {tuple(suffix)}, got {runtime!r}')
    if not out.endswith(suffix[runtime]):
        raise ValueError(f'the {runtime} int8 model is written as {suffix[runtime]}, got '
                         f'out={out!r}')
    if not inputs:
        raise ValueError('quantization needs at least one calibration input')
    if quantized_ops(path):
        raise ValueError(f'{path} is already quantized ({quantized_ops(path)} quantization '
                         'ops): quantize the float export')
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    if runtime == 'openvino':
        try:
            import nncf
            import openvino as ov
        except ImportError as e:
            raise ImportError('OpenVINO int8 needs openvino and nncf: pip install '
                              '"mmdet-compconv[deploy]" nncf') from e
        model = ov.Core().read_model(path)
        if model.inputs[0].get_partial_shape().is_dynamic:
            shapes = {tuple(x.shape) for x in inputs}
            if len(shapes) > 1:
                raise ValueError(f'{path} has a dynamic input shape and the calibration '
                                 f'inputs have several shapes {sorted(shapes)}: OpenVINO int8 '
                                 'is quantized at one static shape')
            model.reshape({model.inputs[0]: list(shapes.pop())})
        quantized = nncf.quantize(model, nncf.Dataset(list(inputs)), subset_size=len(inputs),
                                  preset=nncf.QuantizationPreset.PERFORMANCE,
                                  fast_bias_correction=True)
        ov.save_model(quantized, out, compress_to_fp16=False)
        return out
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry
    from onnxruntime.quantization.shape_inference import quant_pre_process
    name = onnx.load(path, load_external_data=False).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(inputs)

        def get_next(self):
            x = next(self.items, None)
            return None if x is None else {name: x}

    with tempfile.TemporaryDirectory() as tmp:
        prepared = os.path.join(tmp, 'prepared.onnx')
        quant_pre_process(path, prepared, skip_symbolic_shape=True)
        op_types = sorted((set(QDQRegistry) | set(QLinearOpsRegistry)) - {'BatchNormalization'})
        quantize_static(prepared, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax,
                        op_types_to_quantize=op_types)
    return out
