"""ONNX frontend: ONNX models -> verified IR graphs plus their weights."""

from .handlers import HANDLERS
from .importer import MIN_OPSET, Imported, import_onnx
from .loader import MAX_BYTES, check_external_data, load_onnx_file

__all__ = ["HANDLERS", "MAX_BYTES", "MIN_OPSET", "Imported", "check_external_data", "import_onnx",
           "load_onnx_file"]
