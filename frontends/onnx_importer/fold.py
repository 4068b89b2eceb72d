"""Constant folding: computing, at import time, the nodes whose inputs are all constants.

Exporters compute pads, shapes and scales with small subgraphs of constants (torch's reflection
padding: ConstantOfShape, Concat, Reshape, Slice, Transpose, Cast). The importer folds every
such node with ``onnx.reference.ReferenceEvaluator`` (onnx's own implementation of every op)
before looking for a handler, so those subgraphs load whatever ops they use.

Rules:
  1. A node folds when every input it names is a constant (initializer, Constant node or an
     earlier folded result), it is in the default domain, deterministic (no Random*,
     Bernoulli, Multinomial) and has no subgraph attribute (If, Loop, Scan).
  2. Work is bounded: the result's shape is inferred first (onnx shape inference with data
     propagation, inputs as initializers); a result whose size cannot be inferred, or that would
     exceed the ``max_elements`` limit, is refused.
  3. The symbolic batch size appears in shapes as :data:`BATCH`. A constant holding it passes
     only through ops that move values (:data:`BATCH_SAFE`); any arithmetic on it is refused.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from spdnn import limits

__all__ = ["BATCH", "BATCH_SAFE", "FoldError", "can_fold", "fold_node", "holds_batch"]

#: marks the symbolic batch size inside folded shape tensors
BATCH = np.int64(-(2**62))
#: ops that move int64 values without computing with them (rule 3)
BATCH_SAFE = {"Gather", "Slice", "Concat", "Unsqueeze", "Squeeze", "Identity", "Reshape", "Flatten", "Shape",
              "Size"}
NONDETERMINISTIC = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                    "Bernoulli"}
_GRAPH_ATTRS = {onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS}


class FoldError(Exception):
    """A node that looked foldable cannot be computed; the message says why."""


def can_fold(node: onnx.NodeProto) -> bool:
    """Rule 1, apart from the inputs."""
    return (node.domain in ("", "ai.onnx") and node.op_type not in NONDETERMINISTIC
            and not any(a.type in _GRAPH_ATTRS for a in node.attribute))


def holds_batch(array: np.ndarray) -> bool:
    return array.dtype == np.int64 and bool(np.any(array == BATCH))


def fold_node(node: onnx.NodeProto, inputs: list[np.ndarray | None], opset: int) -> list[np.ndarray]:
    """The outputs of ``node`` computed from constant ``inputs`` (None for an omitted optional
    input); raises FoldError (rules 2 and 3)."""
    if any(x is not None and holds_batch(x) for x in inputs):
        to = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "to"), None)
        if node.op_type not in BATCH_SAFE and not (node.op_type == "Cast" and to == onnx.TensorProto.INT64):
            raise FoldError(f"{node.op_type} computes with the batch size, which is not known at import time")
    names = [f"in{i}" if x is not None else "" for i, x in enumerate(inputs)]
    single = onnx.NodeProto()
    single.CopyFrom(node)
    del single.input[:]
    single.input.extend(names)
    del single.output[:]
    outs = [f"out{i}" for i in range(len(node.output))]
    single.output.extend(outs)
    inits = [numpy_helper.from_array(x, n) for x, n in zip(inputs, names, strict=True) if x is not None]
    graph = helper.make_graph([single], "fold", [], [helper.make_value_info(o, onnx.TypeProto()) for o in outs],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as e:
        raise FoldError(f"shape inference failed: {_first_line(e)}") from None
    max_elements = limits.current().max_elements
    for out in inferred.graph.output:
        t = out.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        if not t.HasField("shape") or None in dims:
            raise FoldError("the size of its result cannot be known before computing it")
        if math.prod(dims) > max_elements:
            raise FoldError(limits.limit_message(f"its result would have {math.prod(dims):,} elements (shape "
                                                 f"{dims})", "max_elements"))
    try:
        from onnx.reference import ReferenceEvaluator

        results = ReferenceEvaluator(model).run(None, {})
    except Exception as e:
        raise FoldError(f"computing it failed: {_first_line(e)}") from None
    return [np.asarray(r) for r in results]


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300] if text else ''}"
