"""ONNX export with plain ``torch.onnx``, and the checks of an exported graph.

mmdeploy 1.3.1 cannot export mmdet models on torch 2.13, so the split mmdeploy uses is done
with :class:`~mmdet_compconv.models.DenseDetector`: the backbone, the neck and the dense head
(``tensor`` mode); box decoding and NMS are left to the caller. Both of torch's
exporters are supported: the TorchScript one (``dynamo=False``, what most scripts use) and
the dynamo one (needs ``onnxscript``). ``onnx`` and ``onnxruntime`` are imported only when
used.
"""
from __future__ import annotations

import os
from collections import Counter
from typing import Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

__all__ = ['export_onnx', 'max_abs_error', 'op_counts']


def export_onnx(module: nn.Module,
                x: torch.Tensor,
                path: str,
                dynamo: bool = False,
                opset: int = 17,
                dynamic: bool = False,
                output_names: Optional[Sequence[str]] = None) -> str:
    """Export ``module(x)`` to ONNX at ``path`` with one of torch's exporters.

    The graph's input is named ``input``. The parent folder of ``path`` is created.

    Args:
        module (nn.Module): the model, in eval mode.
        x (torch.Tensor): an example input (N, C, H, W).
        path (str): the ``.onnx`` file to write.
        dynamo (bool): use the dynamo exporter (needs ``onnxscript``) instead of the
            TorchScript one. Default: False.
        opset (int): the ONNX opset version. Default: 17.
        dynamic (bool): make the batch, height and width of the input dynamic.
            Default: False.
        output_names (Sequence[str], optional): names of the graph's outputs, e.g.
            :meth:`~mmdet_compconv.models.DenseDetector.output_names`. Default: None (the
            exporter's names).

    Returns:
        str: ``path``.

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


def max_abs_error(expected: Sequence[torch.Tensor], actual: Sequence[np.ndarray]) -> float:
    """The largest absolute difference between PyTorch outputs and a runtime's.

    Args:
        expected (Sequence[torch.Tensor]): the PyTorch outputs (any device).
        actual (Sequence[np.ndarray]): the runtime's outputs, in the same order.

    Returns:
        float: the largest absolute difference over all outputs (0.0 for no outputs).

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


def op_counts(path: str) -> Dict[str, int]:
    """How many nodes of each ONNX op type the exported graph has (top-level graph).

    Args:
        path (str): the ``.onnx`` file (external data is not loaded).

    Returns:
        dict[str, int]: op type -> number of nodes, in order of first appearance.

    Example (a model with one Conv)::

        op_counts('conv.onnx')  # {'Conv': 1}
    """
    import onnx
    return dict(Counter(node.op_type for node in onnx.load(path, load_external_data=False).graph.node))
