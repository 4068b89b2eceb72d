"""Checks on an ONNX model before anything in it is converted or allocated.

Rules (each failure is an :class:`OnnxModelError` naming the file, and the node, initializer or
input concerned):
  1. Size limits (``spdnn.limits``): ``onnx_nodes`` nodes, counted with every call of a
     model-local function replaced by its body, recursively (a few small functions calling each
     other twice would otherwise make onnx's checker work exponentially long); functions that
     call each other in a cycle are refused; every tensor (initializer, Constant value in the
     graph or a function body, graph input) has dimensions within ``max_dim`` and at most ``max_elements`` elements;
     all initializers together hold at most ``max_params`` elements.
  2. Every tensor has a known data type and exactly as much data as its dimensions say (raw bytes,
     typed fields or external data); a tensor is converted to numpy only after this check.
  3. The model passes ``onnx.checker.check_model(full_check=True)``, which includes strict shape
     inference: unknown attributes, attributes of the wrong type, missing required attributes and
     inputs are refused there, with the checker's words.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
from onnx.external_data_helper import uses_external_data

from spdnn import limits
from spdnn.errors import Problem, SpecError

__all__ = ["OnnxModelError", "validate_model", "tensor_problem", "to_array", "tensor_bytes"]

#: onnx data types with fewer than 8 bits per element (two elements per byte)
_HALF_BYTE = {getattr(TensorProto, n) for n in ("INT4", "UINT4", "FLOAT4E2M1") if hasattr(TensorProto, n)}
#: the typed field that stores each data type when there is no raw data, and values per element
_FIELDS = {TensorProto.COMPLEX64: ("float_data", 2), TensorProto.COMPLEX128: ("double_data", 2)}


class OnnxModelError(SpecError):
    """An ONNX model is invalid, unsafe or over a limit; the message names file and place."""

    def __init__(self, source: str, message: str, where: str = ""):
        super().__init__(Problem(message, source, where=where))


def _where_node(node: onnx.NodeProto) -> str:
    return f"node {node.name or (node.output[0] if node.output else '')!r} ({node.op_type})"


def tensor_bytes(t: TensorProto, count: int) -> int | None:
    """Bytes ``count`` elements of ``t``'s data type take as raw data; None for strings."""
    if t.data_type == TensorProto.STRING:
        return None
    if t.data_type in _HALF_BYTE:
        return (count + 1) // 2
    return count * onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize


def tensor_problem(t: TensorProto) -> str | None:
    """Why ``t`` cannot be converted safely, or None. Checks type, dimensions, limits and the
    length of its data (external data is checked by the loader, against its file)."""
    lim = limits.current()
    if t.data_type == TensorProto.UNDEFINED or t.data_type not in TensorProto.DataType.values():
        return f"data type {t.data_type} is not an ONNX data type"
    try:
        onnx.helper.tensor_dtype_to_np_dtype(t.data_type)
    except Exception:
        return f"data type {TensorProto.DataType.Name(t.data_type)} has no numpy equivalent"
    dims = list(t.dims)
    if any(d < 0 for d in dims):
        return f"negative dimension in {dims}"
    if any(d > lim.max_dim for d in dims):
        return limits.limit_message(f"dimension {max(dims):,} in {dims}", "max_dim")
    count = math.prod(dims)
    if count > lim.max_elements:
        return limits.limit_message(f"{count:,} elements (dims {dims})", "max_elements")
    if uses_external_data(t) or t.data_location == TensorProto.EXTERNAL:
        return None
    if t.HasField("raw_data"):
        need = tensor_bytes(t, count)
        if need is None:
            return "a string tensor with raw data"
        if len(t.raw_data) != need:
            return f"{len(t.raw_data)} bytes of raw data for dims {dims}; {need} expected"
        return None
    field, per = _FIELDS.get(t.data_type, (onnx.helper.tensor_dtype_to_field(t.data_type), 1))
    have = len(getattr(t, field))
    need = per * count if t.data_type not in _HALF_BYTE else (count + 1) // 2
    if have != need:
        return f"{have} values in {field} for dims {dims}; {need} expected"
    return None


def to_array(t: TensorProto, source: str, where: str) -> np.ndarray:
    """``t`` as a numpy array, after :func:`tensor_problem` found nothing wrong."""
    problem = tensor_problem(t)
    if problem is None:
        try:
            return numpy_helper.to_array(t)
        except Exception as e:  # a combination the checks above did not foresee
            problem = f"cannot be read ({type(e).__name__}: {e})"
    raise OnnxModelError(source, problem, where)


def _tensors(model: onnx.ModelProto):
    """(where, tensor) for every initializer and tensor-valued attribute of the graph's and the
    functions' nodes."""
    for init in model.graph.initializer:
        yield f"initializer {init.name!r}", init
    bodies = [("", model.graph.node)] + [(f"function {f.domain}.{f.name} ({f.overload!r}), ", f.node)
                                         for f in model.functions]
    for prefix, nodes in bodies:
        for node in nodes:
            for a in node.attribute:
                tensors = [a.t] if a.HasField("t") else list(a.tensors)
                for t in tensors:
                    yield f"{prefix}{_where_node(node)}, attribute {a.name!r}", t
    for f in model.functions:
        for a in f.attribute_proto:
            for t in [a.t] if a.HasField("t") else list(a.tensors):
                yield f"function {f.domain}.{f.name} ({f.overload!r}), attribute {a.name!r}", t


def inlined_node_count(model: onnx.ModelProto, source: str) -> int:
    """The graph's nodes with every call of a model-local function replaced by its body,
    recursively; past the ``onnx_nodes`` limit the count stops (at the limit + 1). Functions that
    call each other in a cycle are refused."""
    cap = limits.current().onnx_nodes + 1
    functions = {(f.domain, f.name, f.overload): f for f in model.functions}
    size: dict[tuple, int] = {}
    visiting: set[tuple] = set()

    def count(nodes) -> int:
        total = 0
        for n in nodes:
            total = min(cap, total + size.get((n.domain, n.op_type, n.overload), 1))
        return total

    for root in functions:
        stack = [(root, False)]
        while stack:  # depth first, without recursion: a chain of functions may be long
            key, expanded = stack.pop()
            if expanded:
                size[key] = count(functions[key].node)
                visiting.discard(key)
                continue
            if key in size:
                continue
            if key in visiting:
                raise OnnxModelError(source, f"model-local function {key[0]}.{key[1]} calls itself (through a cycle "
                                             "of calls)")
            visiting.add(key)
            stack.append((key, True))
            stack += [(k, False) for n in functions[key].node
                      if (k := (n.domain, n.op_type, n.overload)) in functions and k not in size]
    return count(model.graph.node)


def check_sizes(model: onnx.ModelProto, source: str) -> None:
    """Rules 1 and 2, on the model as parsed (before external data is read)."""
    lim = limits.current()
    graph = model.graph
    if len(graph.node) > lim.onnx_nodes:
        raise OnnxModelError(source, limits.limit_message(f"{len(graph.node):,} nodes", "onnx_nodes"))
    if sum(len(f.node) for f in model.functions) > lim.onnx_nodes:
        raise OnnxModelError(source, limits.limit_message(f"{sum(len(f.node) for f in model.functions):,} nodes "
                                                          "in model-local functions", "onnx_nodes"))
    if inlined_node_count(model, source) > lim.onnx_nodes:
        raise OnnxModelError(source, limits.limit_message(f"over {lim.onnx_nodes:,} nodes once the calls of "
                                                          "model-local functions are inlined", "onnx_nodes"))
    total = 0
    for where, t in _tensors(model):
        problem = tensor_problem(t)
        if problem:
            raise OnnxModelError(source, problem, where)
        total += math.prod(t.dims)
    if total > lim.max_params:
        raise OnnxModelError(source, limits.limit_message(f"initializers hold {total:,} values", "max_params"))
    for inp in graph.input:
        dims = [d.dim_value for d in inp.type.tensor_type.shape.dim if d.HasField("dim_value")]
        if any(d > lim.max_dim for d in dims):
            raise OnnxModelError(source, limits.limit_message(f"dimension {max(dims):,} in {dims}", "max_dim"),
                                 f"input {inp.name!r}")
        if math.prod(dims[1:]) > lim.max_elements:
            raise OnnxModelError(source, limits.limit_message(f"{math.prod(dims[1:]):,} elements per sample",
                                                              "max_elements"), f"input {inp.name!r}")


def check_with_onnx(model: onnx.ModelProto, source: str) -> None:
    """Rule 3: ``onnx.checker`` with full_check (strict shape inference included)."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        raise OnnxModelError(source, "the ONNX checker rejects the model: " + " ".join(lines)[:600]) from None


def validate_model(model: onnx.ModelProto, source: str = "model") -> None:
    """All the rules above, on a model whose external data (if any) is loaded."""
    check_sizes(model, source)
    check_with_onnx(model, source)
