"""ONNX backend: IR graph + weights -> ONNX, and running ONNX models in onnxruntime."""

from .emitters import EMITTERS, UNSUPPORTED
from .exporter import (
           DEFAULT_OPSET,
           MIN_OPSET,
           export_onnx,
           export_onnx_bytes,
           max_opset,
           to_numpy_weights,
           weights_sha256,
)
from .runtime import choose_providers, make_session, read_model, run_onnx

__all__ = ["DEFAULT_OPSET", "EMITTERS", "MIN_OPSET", "UNSUPPORTED", "choose_providers", "export_onnx", "export_onnx_bytes",
           "max_opset",
           "make_session", "read_model", "run_onnx", "to_numpy_weights", "weights_sha256"]
