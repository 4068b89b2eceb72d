"""Multi-node ops as ONNX model-local functions: one call node per layer.

Rules:
  1. An op in :data:`FUNCTION_OPS` is written as one node of domain :data:`DOMAIN` (version
     :data:`VERSION`), op type the spdnn op's name, node name and ``overload`` the layer's name. It
     calls the model-local ``FunctionProto`` of the same (domain, name, overload), whose body is the
     op's emitter (``building_blocks.py``). Netron shows one box per layer; onnxruntime inlines
     the body, so it runs the same nodes as an inline export.
  2. The call's attributes are the layer's spdnn attributes (ints, int lists, floats, strings;
     booleans as 0/1; unset optional attributes omitted), declared by the function.
  3. The call's inputs are the op's inputs, then its parameters: graph initializers named as the
     torch state dict (``<layer>.weight``). Inside the body the formal inputs are named after the
     op's ports and parameters (``x``, ``dynamic_conv2d.weight``) and every other constant is a
     Constant node. So the body depends only on the op, its attributes, its input types and its
     parameters' names, never on the layer's name; its tensor names are scoped to the function
     and cannot clash with the graph's (the layers').
  4. Overloads need IR version 10 (onnxruntime 1.17 or newer): a model with such functions has
     that IR version at least.
  5. The importer rebuilds the body with :func:`emit_call` and refuses a model whose function
     differs from it (``frontends/onnx_importer/functions.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import AttributeProto, FunctionProto, helper, numpy_helper

from spdnn.ir.graph import Node
from spdnn.ops import get_op

from .building_blocks import EMITTERS as BODY_EMITTERS
from .emitters import Emit

__all__ = ["DOMAIN", "FUNCTION_OPS", "IR_VERSION", "VERSION", "call_attributes", "emit_call"]

DOMAIN = "ai.spdnn"
VERSION = 1
#: the IR version that carries ``overload`` (rule 4)
IR_VERSION = 10
#: the ops written as functions (log_filter_bank is a plain Conv and imports as conv2d)
FUNCTION_OPS = frozenset({"dynamic_conv2d", "sample_conv2d", "haar_pool", "haar_unpool",
                          "minibatch_discrimination", "repeat_code"})


def call_attributes(node: Node) -> list[AttributeProto]:
    """Rule 2: the node's spdnn attributes as ONNX attributes, sorted by name."""
    out = []
    for name, value in sorted(node.attrs.model_dump().items()):
        if value is None:
            continue
        out.append(helper.make_attribute(name, _onnx_value(value)))
    return out


def _onnx_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (tuple, list)):
        return [_onnx_value(v) for v in value]
    return value


def emit_call(e: Emit, opset: int) -> FunctionProto:
    """Append the call node of ``e.node`` (and its parameters as initializers) to ``e``; return
    the function it calls, for the model's ``functions`` (rules 1-3)."""
    op = get_op(e.node.op)
    layer = e.node.name
    body = Emit(Node(op.name, op.name, e.node.attrs), list(op.inputs), list(op.outputs), e.in_types,
                e.out_types, {f"{op.name}{k[len(layer):]}": v for k, v in e.weights.items()
                              if k.startswith(layer + ".")})
    BODY_EMITTERS[op.name](body)
    constants, params = [], []
    for name, array in body.initializers:
        if name in body.weight_names:
            params.append(name)
            e.const(layer + name[len(op.name):], array)
        else:
            constants.append(helper.make_node("Constant", [], [name], name=name,
                                              value=numpy_helper.from_array(np.asarray(array), name)))
    attrs = call_attributes(e.node)
    e.nodes.append(helper.make_node(op.name, e.inputs + [layer + p[len(op.name):] for p in params], e.outputs,
                                    name=layer, domain=DOMAIN, overload=layer))
    e.nodes[-1].attribute.extend(attrs)
    return helper.make_function(DOMAIN, op.name, list(op.inputs) + params, list(op.outputs), constants + body.nodes,
                                [helper.make_opsetid("", opset)], attributes=[a.name for a in attrs],
                                overload=layer)
