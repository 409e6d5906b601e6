"""Running CompConv models outside training: the export form, ONNX, CPU runtimes, benchmarks.

* :mod:`.export_form`: :func:`to_export_form`, the form built for ONNX runtimes;
* :mod:`.forms`: the forms a model runs in (train, deploy, export) and the vanilla twin;
* :mod:`.onnx_export`: ``torch.onnx`` export and graph checks;
* :mod:`.runtimes`: ONNX Runtime and OpenVINO, compiled, run and profiled;
* :mod:`.benchmark`: interleaved timing against the vanilla twin.
"""
from .export_form import ExportCompConv, dense_export_conv, to_export_form
from .forms import FORMS, model_form, vanilla_twin
from .onnx_export import export_onnx, max_abs_error, op_counts
from .runtimes import (ORT_LEVELS, RUNTIMES, load_runtime, ort_optimized_op_counts,
                       run_onnxruntime, runtime_profile)

__all__ = [
    'ExportCompConv', 'dense_export_conv', 'to_export_form', 'FORMS', 'model_form',
    'vanilla_twin', 'export_onnx', 'max_abs_error', 'op_counts', 'ORT_LEVELS', 'RUNTIMES',
    'load_runtime', 'ort_optimized_op_counts', 'run_onnxruntime', 'runtime_profile'
]
