"""ONNX ModelProto -> verified IR graph + weights (a state dict for the torch backend).

Rules:
  1. The first dimension of every graph input is the batch; the IR keeps the remaining ones.
  2. Initializers and Constant nodes are constants, and so is every node whose inputs are all
     constants (folded with onnx's reference evaluator); an op's weights must be constants.
  3. Every node's op must have a handler for the model's opset (11 to the newest onnx knows); all
     unsupported ops, and all unsupported variants of supported ops, are reported in one error
     with their op type, opset and node name.
  4. IR node names come from the ONNX node names (or first output), sanitised (no leading ``_``)
     and made unique;
     weights are keyed ``<node>.<param>`` like the torch state dict.
  5. Graph outputs become ``output`` nodes named after the ONNX outputs.
  6. Nodes outside the default domain are refused (op, domain and node named), but calls of
     spdnn's own functions (domain ``ai.spdnn``), which become the op they export after their
     body is checked against the one spdnn writes (``functions.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from spdnn.errors import SpdnnError, UnsupportedOpError, first_line
from spdnn.ir.graph import Graph, Value
from spdnn.ir.naming import sanitize
from spdnn.ir.types import TensorType
from spdnn.layer_options import METADATA_KEY
from spdnn.passes.infer_shapes import infer_node

from .attrs import AttributeProblem, read_attributes
from .fold import FoldError, can_fold, fold_node
from .layer_options import attach_layer_options
from .loader import load_checked_model
from .validate import to_array, validate_model

__all__ = ["Imported", "import_onnx", "MIN_OPSET", "Unsupported"]

MIN_OPSET = 6


class Unsupported(Exception):
    """Raised by a handler for a variant it cannot import; the message says why."""


@dataclass
class Imported:
    """An imported model: its graph and weights (keys as in the torch state dict)."""

    graph: Graph
    weights: dict[str, np.ndarray] = field(default_factory=dict)


class Context:
    """What handlers use to build the graph."""

    def __init__(self, name: str, opset: int):
        self.g = Graph(name)
        self.opset = opset
        self.weights: dict[str, np.ndarray] = {}
        self.consts: dict[str, np.ndarray] = {}
        self.values: dict[str, Value] = {}
        #: how many ONNX nodes (and graph outputs) read each tensor
        self.consumers: dict[str, int] = {}
        #: names of the graph outputs
        self.graph_outputs: set[str] = set()
        self.node_name = ""
        #: the model's local functions by (domain, name, overload)
        self.functions: dict[tuple[str, str, str], onnx.FunctionProto] = {}

    # -- values
    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name) if name else None

    def need_const(self, name: str, what: str) -> np.ndarray:
        value = self.const(name)
        if value is None:
            raise Unsupported(f"{what} must be a constant (an initializer or Constant node)")
        return value

    def value(self, name: str) -> Value:
        if name in self.values:
            return self.values[name]
        if name in self.consts:
            raise Unsupported(f"input {name!r} is a constant where a computed tensor is expected")
        raise Unsupported(f"input {name!r} is not available")

    def type(self, v: Value) -> TensorType:
        return self.g.type_of(v)

    # -- building
    def add(self, op: str, attrs: dict[str, Any], inputs: list[Value], suffix: str = "",
            weights: dict[str, np.ndarray] | None = None) -> Value:
        """Add an IR node named after the current ONNX node, infer its types, store weights."""
        name = self.g.unique_name(self.node_name + suffix)
        try:
            self.g.add_node(name, op, attrs, inputs)
            infer_node(self.g, name)
        except SpdnnError as e:  # ShapeError, VerifyError (bad attributes)
            if name in self.g:
                self.g.remove(name)
            raise Unsupported(first_line(e, 1000)) from None
        for key, array in (weights or {}).items():
            self.weights[f"{name}.{key}"] = np.ascontiguousarray(array)
        return Value(name, 0)


def ir_name(onnx_name: str) -> str:
    """An IR node name for an ONNX name: sanitised, without leading underscores (torch exports
    name nodes ``/conv/Conv``; a name like ``_result_slots`` would shadow private attributes of the
    torch module)."""
    return sanitize(sanitize(onnx_name).lstrip("_") or "node")


def import_onnx(model: onnx.ModelProto | str | Path, name: str | None = None) -> Imported:
    """Import an ONNX model (a ModelProto or a path, loaded safely).

    The model is validated first (``validate.py``: limits, tensor data, the ONNX checker); then
    nodes are taken in order: a node whose inputs are all constants is folded (``fold.py``),
    any other is mapped by its op's handler after its attributes are checked (``attrs.py``).

    Raises:
        OnnxModelError (a SpecError): unreadable, unsafe, invalid or oversized model.
        UnsupportedOpError: listing every unsupported op, variant or attribute.
    """
    from .handlers import ATTRIBUTES, HANDLERS

    source = "model"
    if isinstance(model, onnx.ModelProto):
        validate_model(model, source)
    else:
        source = str(model)
        model = load_checked_model(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    newest = onnx.defs.onnx_opset_version()
    graph = model.graph
    if not MIN_OPSET <= opset <= newest:
        raise UnsupportedOpError([("model", opset, graph.name, f"opsets {MIN_OPSET} to {newest} are supported")],
                                 source)
    versions = {o.domain: o.version for o in model.opset_import}
    maybe_constant = _foldable_tensors(graph)
    missing = [(_op_label(n), versions.get(n.domain, opset), n.name or n.output[0], _missing_reason(n))
               for n in graph.node if not _known(n, HANDLERS) and not all(o in maybe_constant for o in n.output)]
    if missing:
        raise UnsupportedOpError(missing, source)
    ctx = Context(ir_name(name or graph.name or Path(source).stem or "model"), opset)
    ctx.functions = {(f.domain, f.name, f.overload): f for f in model.functions}
    for init in graph.initializer:
        ctx.consts[init.name] = to_array(init, source, f"initializer {init.name!r}")
    ctx.graph_outputs = {o.name for o in graph.output}
    for tensor in [i for n in graph.node for i in n.input] + [o.name for o in graph.output]:
        ctx.consumers[tensor] = ctx.consumers.get(tensor, 0) + 1
    problems: list[tuple[str, int, str, str]] = []
    for inp in graph.input:
        if inp.name in ctx.consts:
            continue
        try:
            _add_input(ctx, inp)
        except Unsupported as e:
            problems.append(("input", opset, inp.name, str(e)))
    for node in graph.node:
        node_name = node.name or node.output[0]
        if any(i and i not in ctx.values and i not in ctx.consts for i in node.input):
            continue  # a producer failed: reported there
        try:
            _import_node(ctx, node, HANDLERS, ATTRIBUTES)
        except (Unsupported, FoldError, AttributeProblem) as e:
            problems.append((_op_label(node), versions.get(node.domain, opset), node_name, str(e)))
        except (IndexError, KeyError, ValueError, TypeError, ArithmeticError) as e:
            # a malformed node the checks did not foresee: reported like any other refusal
            problems.append((_op_label(node), versions.get(node.domain, opset), node_name,
                             f"cannot be imported ({type(e).__name__}: {e})"))
    for out in graph.output:
        if out.name not in ctx.values:
            if out.name in ctx.consts:
                problems.append(("output", opset, out.name, "a constant graph output has no IR form"))
            continue
        ctx.g.add_node(ctx.g.unique_name(ir_name(out.name)), "output", {}, [ctx.values[out.name]])
    if problems:
        raise UnsupportedOpError(problems, source)
    ctx.g.verify()
    ctx.g.meta["file"] = source
    options = next((p.value for p in model.metadata_props if p.key == METADATA_KEY), None)
    if options is not None:
        attach_layer_options(ctx.g, options, source, ir_name)
    return Imported(ctx.g, ctx.weights)


def _foldable_tensors(graph: onnx.GraphProto) -> set[str]:
    """Tensors that are constant, or may become constant by folding (including every Shape)."""
    consts = {i.name for i in graph.initializer} | {""}
    for node in graph.node:
        if node.op_type == "Shape" or (can_fold(node) and all(i in consts for i in node.input)):
            consts.update(node.output)
    return consts


_DEFAULT_DOMAINS = ("", "ai.onnx")


def _op_label(node: onnx.NodeProto) -> str:
    """The op type, prefixed by its domain outside the default one (``ai.spdnn.haar_pool``)."""
    return node.op_type if node.domain in _DEFAULT_DOMAINS else f"{node.domain}.{node.op_type}"


def _known(node: onnx.NodeProto, handlers: dict) -> bool:
    from .functions import DOMAIN, FUNCTION_OPS

    if node.domain in _DEFAULT_DOMAINS:
        return node.op_type in handlers
    return node.domain == DOMAIN and node.op_type in FUNCTION_OPS


def _missing_reason(node: onnx.NodeProto) -> str:
    if node.domain in _DEFAULT_DOMAINS:
        return "no importer for this op"
    return f"custom domain {node.domain!r}: no importer for this op"


def _import_node(ctx: Context, node: onnx.NodeProto, handlers: dict, attributes: dict) -> None:
    """Fold ``node`` if its inputs are all constants, else map it with its handler (a call of
    an spdnn function: ``functions.py``)."""
    inputs = [ctx.const(i) for i in node.input]
    if can_fold(node) and all(x is not None for i, x in zip(node.input, inputs, strict=True) if i):
        outs = fold_node(node, inputs, ctx.opset)
    elif node.domain not in _DEFAULT_DOMAINS:
        from .functions import import_call

        ctx.node_name = ir_name(node.name or node.output[0])
        outs = import_call(ctx, node, ctx.functions)
    elif node.op_type not in handlers:
        raise Unsupported("no importer for this op")
    else:
        ctx.node_name = ir_name(node.name or node.output[0])
        outs = handlers[node.op_type](ctx, node, read_attributes(node, attributes[node.op_type]))
    for out_name, value in zip(node.output, outs, strict=False):
        if value is None or not out_name:
            continue
        if isinstance(value, np.ndarray):
            ctx.consts[out_name] = value
        else:
            ctx.values[out_name] = value


def _add_input(ctx: Context, inp: onnx.ValueInfoProto) -> None:
    t = inp.type.tensor_type
    if t.elem_type != onnx.TensorProto.FLOAT:
        raise Unsupported(f"input type {onnx.TensorProto.DataType.Name(t.elem_type)}; float32 inputs only")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    if len(dims) < 2 or any(d is None or d < 1 for d in dims[1:]):
        raise Unsupported(f"input shape {dims}: needs a batch dimension and static sample dimensions")
    name = ctx.g.unique_name(ir_name(inp.name))
    ctx.g.add_node(name, "input", {"shape": dims[1:]})
    infer_node(ctx.g, name)
    ctx.values[inp.name] = Value(name, 0)
