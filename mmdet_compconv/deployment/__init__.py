"""Running CompConv models outside training: the export form, ONNX, CPU runtimes, precisions,
quantization, evaluation and benchmarks.

* :mod:`.export_form`: :func:`to_export_form`, the form built for ONNX runtimes;
* :mod:`.forms`: the forms a model runs in (train, deploy, export, hybrid) and the vanilla twin;
* :mod:`.onnx_export`: ``torch.onnx`` export and graph checks;
* :mod:`.precision`: fp32 / bf16 / int8, the CPU's instruction sets, precisions read back;
* :mod:`.quantize`: post-training int8 quantization (NNCF, ONNX Runtime) and calibration;
* :mod:`.runtimes`: ONNX Runtime and OpenVINO, compiled, run and profiled;
* :mod:`.evaluation`: an exported model in place of ``extract_feat`` under mmdet's test loop;
* :mod:`.benchmark`: interleaved timing against the vanilla twin.
"""
from .evaluation import RuntimeFeatures, runtime_model_file, use_runtime_features
from .export_form import ExportCompConv, dense_export_conv, to_export_form
from .forms import FORMS, model_form, vanilla_twin
from .onnx_export import export_onnx, max_abs_error, op_counts
from .precision import (ISA_FLAGS, PRECISIONS, cpu_isa, isa_summary, onnxruntime_precisions,
                        openvino_precisions, summarize_precisions, torch_conv_dtypes)
from .quantize import calibration_inputs, quantize_model, quantized_ops
from .runtimes import (OPENVINO_HINTS, ORT_LEVELS, RUNTIMES, executed_precisions, load_runtime,
                       ort_optimized_op_counts, run_onnxruntime, runtime_profile)

__all__ = [
    'ExportCompConv', 'dense_export_conv', 'to_export_form', 'FORMS', 'model_form',
    'vanilla_twin', 'export_onnx', 'max_abs_error', 'op_counts', 'ORT_LEVELS', 'RUNTIMES',
    'OPENVINO_HINTS', 'load_runtime', 'ort_optimized_op_counts', 'run_onnxruntime',
    'runtime_profile', 'executed_precisions', 'PRECISIONS', 'ISA_FLAGS', 'cpu_isa',
    'isa_summary', 'openvino_precisions', 'onnxruntime_precisions', 'torch_conv_dtypes',
    'summarize_precisions', 'calibration_inputs', 'quantize_model', 'quantized_ops',
    'RuntimeFeatures', 'use_runtime_features', 'runtime_model_file'
]
