"""Calls of spdnn's model-local functions (domain ``ai.spdnn``) -> the spdnn op they export.

Rules (the exporter's side: ``backends/onnx_exporter/functions.py``):
  1. A node of domain ``ai.spdnn`` whose op type is one of the exporter's ``FUNCTION_OPS``
     becomes that op; its attributes are the op's attributes (ints, int lists, floats, strings)
     and are validated by the op's attribute model. Other custom-domain nodes are refused.
  2. The node's inputs are the op's inputs, then its parameters, which must be float32
     initializers of exactly the shapes the op's torch layer has (:data:`PARAM_SHAPES`).
  3. The function body is never run nor trusted: the importer rebuilds the call node and the
     function with the exporter's own emitter from the imported layer, and refuses the model
     unless the file's function (and the call's attributes) equal the rebuilt ones exactly. So
     a body can only be what spdnn writes for those attributes and shapes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import pydantic
from onnx import AttributeProto, helper

from spdnn.backends.onnx_exporter.emitters import Emit
from spdnn.backends.onnx_exporter.functions import DOMAIN, FUNCTION_OPS, VERSION, call_attributes, emit_call
from spdnn.ir.graph import Value
from spdnn.ir.types import TensorType
from spdnn.ops import get_op

from .importer import Context, Unsupported

__all__ = ["DOMAIN", "FUNCTION_OPS", "PARAM_SHAPES", "VERSION", "import_call"]

_SCALAR_TYPES = {AttributeProto.INT, AttributeProto.INTS, AttributeProto.FLOAT, AttributeProto.FLOATS,
                 AttributeProto.STRING}


def _dynamic_conv2d_params(a, ins: list[TensorType]) -> dict[str, tuple[int, ...]]:
    shapes = {"weight": (a.m, int(ins[0].shape[1]), *a.kernel_size)}
    return shapes | ({"bias": (a.out_channels,)} if a.bias else {})


#: op -> (attributes, input types) -> {parameter: shape}, as the torch layer holds them (rule 2)
PARAM_SHAPES: dict[str, Callable[..., dict[str, tuple[int, ...]]]] = {
    "dynamic_conv2d": _dynamic_conv2d_params,
    "minibatch_discrimination": lambda a, ins: {"weight": (int(ins[0].shape[1]), a.num_kernels * a.kernel_dim)},
}


def _attributes(node: onnx.NodeProto) -> dict:
    values = {}
    for a in node.attribute:
        if a.type not in _SCALAR_TYPES or a.ref_attr_name:
            raise Unsupported(f"attribute {a.name!r} is {AttributeProto.AttributeType.Name(a.type)}; spdnn "
                              "writes ints, floats and strings")
        value = helper.get_attribute_value(a)
        values[a.name] = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
    return values


def import_call(ctx: Context, node: onnx.NodeProto, functions: dict) -> list[Value]:
    """The IR node for a call of an spdnn function (rules 1-3)."""
    if node.domain != DOMAIN or node.op_type not in FUNCTION_OPS:
        raise Unsupported(f"custom domain {node.domain!r}: no importer for this op")
    fn = functions.get((node.domain, node.op_type, node.overload))
    if fn is None:
        raise Unsupported(f"the model defines no function {node.domain}.{node.op_type} (overload "
                          f"{node.overload!r})")
    op = get_op(node.op_type)
    n_in = len(op.inputs)
    if len(node.input) < n_in or len(fn.input) != len(node.input):
        raise Unsupported(f"{len(node.input)} inputs; the op's {n_in} inputs then its parameters expected")
    params = {}
    for formal, actual in zip(fn.input[n_in:], node.input[n_in:], strict=True):
        key = formal[len(op.name) + 1:] if formal.startswith(op.name + ".") else ""
        params[key] = ctx.need_const(actual, f"parameter {formal!r}")
    attrs = _attributes(node)
    try:
        op.attrs.model_validate(attrs)
    except pydantic.ValidationError as e:
        raise Unsupported("; ".join(f"attribute {'.'.join(map(str, err['loc']))!r}: {err['msg']}"
                                    for err in e.errors())) from None
    y = ctx.add(op.name, attrs, [ctx.value(i) for i in node.input[:n_in]])
    layer = ctx.g.node(y.node)
    in_types = [ctx.type(v) for v in ctx.g.inputs_of(layer.name)]
    want = PARAM_SHAPES.get(op.name, lambda a, ins: {})(layer.attrs, in_types)
    got = {k: tuple(v.shape) for k, v in params.items()}
    if got != want or any(v.dtype != np.float32 for v in params.values()):
        raise Unsupported(f"parameters {got} ({', '.join(sorted({str(v.dtype) for v in params.values()}))}); "
                          f"float32 {want} expected")
    ctx.weights.update({f"{layer.name}.{k}": np.array(v, np.float32) for k, v in params.items()})
    _check_body(ctx, node, fn, layer, in_types, params)
    return [Value(layer.name, port) for port in range(len(node.output))]


def _check_body(ctx: Context, node: onnx.NodeProto, fn: onnx.FunctionProto, layer, in_types, params) -> None:
    """Rule 3: the file's function and call attributes equal the ones spdnn writes for ``layer``."""
    e = Emit(layer, list(node.input[:len(in_types)]), list(node.output), in_types, ctx.g.out_types(layer.name),
             {f"{layer.name}.{k}": v for k, v in params.items()})
    expected = emit_call(e, ctx.opset)
    expected.overload = fn.overload
    if list(node.attribute) != call_attributes(layer):
        raise Unsupported("its attributes are not written as spdnn writes them (every attribute of the op, "
                          "sorted, booleans as 0/1)")
    if len(node.output) != len(expected.output) or fn != expected:
        raise Unsupported(f"the body of function {fn.domain}.{fn.name} (overload {fn.overload!r}) is not the "
                          "one spdnn writes for these attributes and shapes; refused (bodies are not run)")
