"""The IR: :class:`Graph` of :class:`Node` s, tensor types and metadata keys."""

from spdnn.ir import meta
from spdnn.ir.graph import Graph, Node, Value
from spdnn.ir.types import BATCH, Shape, TensorType, format_shape

__all__ = ["BATCH", "Graph", "Node", "Shape", "TensorType", "Value", "format_shape", "meta"]
