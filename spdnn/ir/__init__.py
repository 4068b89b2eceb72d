"""The IR: graph, node types, tensor types and per-node metadata keys.

Names are imported on first use (PEP 562): ``spdnn.ir.types`` is needed by the op registry,
which ``spdnn.ir.graph`` itself imports, so this package must not import the graph eagerly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spdnn.ir import meta
    from spdnn.ir.graph import Graph, Node, Value
    from spdnn.ir.types import BATCH, Shape, TensorType, format_shape

__all__ = ["BATCH", "Graph", "Node", "Shape", "TensorType", "Value", "format_shape", "meta"]

_LAZY = {
    **dict.fromkeys(("Graph", "Node", "Value"), "spdnn.ir.graph"),
    **dict.fromkeys(("BATCH", "Shape", "TensorType", "format_shape"), "spdnn.ir.types"),
}


def __getattr__(name: str) -> Any:
    if name == "meta":
        return importlib.import_module("spdnn.ir.meta")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'spdnn.ir' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
