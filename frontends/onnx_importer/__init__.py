"""ONNX frontend: ONNX models -> verified IR graphs plus their weights."""

from .handlers import ATTRIBUTES, HANDLERS
from .importer import MIN_OPSET, Imported, import_onnx
from .loader import MAX_BYTES, check_external_data, load_checked_model, load_onnx_file
from .validate import OnnxModelError, validate_model

__all__ = ["ATTRIBUTES", "HANDLERS", "MAX_BYTES", "MIN_OPSET", "Imported", "OnnxModelError", "check_external_data",
           "import_onnx", "load_checked_model", "load_onnx_file", "validate_model"]
