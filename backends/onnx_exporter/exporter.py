"""IR graph + weights -> ONNX ModelProto.

Rules:
  1. Every input and output has the symbolic batch dimension ``N``; names are the IR's (inputs and
     outputs by their node names, values by their producing node, ``<node>_<port>`` for port > 0).
  2. The opset is selectable (13 to the newest that both the installed onnx and onnxruntime handle,
     default 17); the IR version is the smallest that carries that opset, so the installed (and
     older) onnxruntime builds load the file; IR 10 where the model holds spdnn functions
     (:mod:`.functions`: the papers' multi-node ops, one call node per layer).
  3. Metadata records the spdnn version, the source spec and a SHA-256 of the weights; nodes and
     metadata carry the spec's citations and the merge's provenance (:mod:`.provenance`).
  4. Every model passes what ``onnx.checker.check_model(full_check=True)`` checks: the checker on
     its serialised bytes, strict typed shape inference on its graph (see ``_full_check``).
  5. The model is serialised once, each weight copied once (:mod:`.wire`); the hash reads the
     weights' own buffers.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from spdnn import __version__
from spdnn.errors import ExportError
from spdnn.ir import meta as M
from spdnn.ir.graph import Graph
from spdnn.limits import current, human_bytes, limit_message
from spdnn.ops import get_op
from spdnn.passes.infer_shapes import infer_shapes

from .emitters import EMITTERS, UNSUPPORTED, Emit
from .functions import DOMAIN, FUNCTION_OPS, IR_VERSION, VERSION, emit_call
from .provenance import model_props, node_doc
from .runtime import max_runtime_opset
from .wire import serialize_with_initializers

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "export_onnx", "export_onnx_bytes", "max_opset", "weights_sha256",
           "to_numpy_weights"]

DEFAULT_OPSET = 17
MIN_OPSET = 13
_DTYPES = {"float32": TensorProto.FLOAT, "int64": TensorProto.INT64}
_SHAPE_VALUE_ELEMENTS = 64  # tensors whose values shape inference sees (see _full_check)
_PROTOBUF_MAX = 2**31 - 1  # a protobuf message (an ONNX file without external data) is under 2 GiB


def max_opset() -> int:
    """The newest opset the installed onnx knows and the installed onnxruntime loads."""
    return min(onnx.defs.onnx_opset_version(), max_runtime_opset())


def to_numpy_weights(state_dict: dict[str, Any]) -> dict[str, np.ndarray]:
    """A torch state dict (or any mapping of array-likes) as float32/int64 numpy arrays."""
    out = {}
    for name, value in state_dict.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        out[name] = np.asarray(value)
    return out


def weights_sha256(weights: dict[str, np.ndarray]) -> str:
    """SHA-256 over the weights' names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(weights):
        a = np.ascontiguousarray(weights[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(memoryview(a).cast("B"))  # no copy
    return h.hexdigest()


def _value_name(node: str, port: int, graph: Graph) -> str:
    if port == 0:
        return node
    return f"{node}_{get_op(graph.node(node).op).outputs[port]}"


def _value_info(name: str, t, doc: str) -> onnx.ValueInfoProto:
    shape = ["N" if d == "N" else int(d) for d in t.shape]
    return helper.make_tensor_value_info(name, _DTYPES[t.dtype], shape, doc_string=doc)


def export_onnx_bytes(graph: Graph, weights: dict[str, Any], opset: int = DEFAULT_OPSET,
                      source: str | None = None) -> bytes:
    """The serialised ONNX model of ``graph`` with ``weights`` (a torch state dict or numpy
    arrays), checked by onnx's checker (on these very bytes) and strict shape inference. Each
    weight is copied once (see :mod:`.wire`).

    Raises:
        ExportError: an op cannot be expressed, a weight is missing, the opset is out of range, or
            the model would exceed the ONNX size limit.
    """
    weights = to_numpy_weights(weights)
    model, initializers = _model_without_initializers(graph, weights, opset, source)
    size = sum(int(a.nbytes) for _, a in initializers)
    limit = min(current().onnx_bytes, _PROTOBUF_MAX)
    if size > limit:
        raise ExportError(limit_message(f"{graph.name!r}: the ONNX model's weights take {human_bytes(size)}, over "
                                        f"the {human_bytes(limit)} a single ONNX file holds", "onnx_bytes"))
    model.metadata_props.add(key="weights_sha256", value=weights_sha256(weights))
    data = serialize_with_initializers(model, initializers)
    _full_check(data, model, initializers, graph.name)
    return data


def _full_check(data: bytes, model: onnx.ModelProto, initializers: list[tuple[str, np.ndarray]],
                name: str) -> None:
    """What ``check_model(data, full_check=True)`` checks, the checker and strict, typed shape
    inference, without inference's cost in the weights' bytes.

    The checker runs on ``data`` itself (every node, attribute, initializer and its data field).
    Shape inference runs on ``model`` (``data`` without its initializers; changed in place) with
    the initializers added back, those over ``_SHAPE_VALUE_ELEMENTS`` elements by type and shape
    only: no op infers a shape from the values of a weight; the tensors that decide shapes
    (Reshape's shape, Resize's scales, Pad's pads) are small and keep their values. onnx's full
    check spends several times the checker's time in those bytes (60 ms on a 23 MB model).
    """
    for init_name, array in initializers:
        if array.size <= _SHAPE_VALUE_ELEMENTS:
            model.graph.initializer.append(numpy_helper.from_array(array, init_name))
        else:
            model.graph.initializer.add(name=init_name, dims=array.shape,
                                        data_type=helper.np_dtype_to_tensor_dtype(array.dtype))
    try:
        onnx.checker.check_model(data)
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        # a bug in an emitter, not the user's
        raise RuntimeError(f"spdnn produced an invalid ONNX model for {name!r}: {e}") from e


def export_onnx(graph: Graph, weights: dict[str, Any], opset: int = DEFAULT_OPSET,
                source: str | None = None) -> onnx.ModelProto:
    """:func:`export_onnx_bytes` parsed into an ``onnx.ModelProto``."""
    return onnx.load_from_string(export_onnx_bytes(graph, weights, opset, source))


def _model_without_initializers(graph: Graph, weights: dict[str, np.ndarray], opset: int,
                                source: str | None) -> tuple[onnx.ModelProto, list[tuple[str, np.ndarray]]]:
    """The model with every node, input, output and metadata (but the weights' hash), and its
    initializers apart."""
    newest = max_opset()
    if not MIN_OPSET <= opset <= newest:
        raise ExportError(f"opset {opset} is not supported; choose {MIN_OPSET} to {newest} (the newest both "
                          "the installed onnx and onnxruntime handle)")
    if any(M.OUT_TYPES not in graph.meta_of(n.name) for n in graph):
        infer_shapes(graph)
    nodes, inits, inputs, outputs, functions = [], [], [], [], []
    for node in graph:
        doc = node_doc(graph, node.name)
        if node.op == "input":
            inputs.append(_value_info(node.name, graph.out_types(node.name)[0], doc))
            continue
        ins = [_value_name(v.node, v.port, graph) for v in graph.inputs_of(node.name)]
        if node.op == "output":
            (src,) = graph.inputs_of(node.name)
            t = graph.type_of(src)
            if graph.node(src.node).op == "max_pool2d" and src.port == 1:
                raise ExportError(f"output {node.name!r} exposes max_pool2d indices, whose layout differs "
                                  "between torch (per plane) and ONNX (per tensor)")
            nodes.append(helper.make_node("Identity", ins, [node.name], name=node.name, doc_string=doc or None))
            outputs.append(_value_info(node.name, t, doc))
            continue
        if node.op in UNSUPPORTED or node.op not in EMITTERS:
            why = UNSUPPORTED.get(node.op, "no ONNX emitter registered")
            raise ExportError(f"node {node.name!r}: op {node.op!r} cannot be exported to ONNX: {why}")
        n_out = get_op(node.op).num_outputs(node.attrs)
        e = Emit(node, ins, [_value_name(node.name, p, graph) for p in range(n_out)],
                 [graph.type_of(v) for v in graph.inputs_of(node.name)], graph.out_types(node.name), weights)
        if node.op in FUNCTION_OPS:
            functions.append(emit_call(e, opset))
        else:
            EMITTERS[node.op](e)
        for onnx_node in e.nodes if doc else ():
            onnx_node.doc_string = doc
        nodes += e.nodes
        inits += e.initializers
    order = {n.name: i for i, n in enumerate(graph.output_nodes())}  # the torch module's order
    outputs.sort(key=lambda v: order[v.name])
    opsets = [helper.make_opsetid("", opset)]
    ir_version = helper.find_min_ir_version_for(opsets)
    if functions:
        opsets.append(helper.make_opsetid(DOMAIN, VERSION))
        ir_version = max(ir_version, IR_VERSION)
    model = helper.make_model(helper.make_graph(nodes, graph.name, inputs, outputs), opset_imports=opsets,
                              producer_name="spdnn", producer_version=__version__, ir_version=ir_version,
                              functions=functions)
    if graph.meta.get("description"):
        model.doc_string = str(graph.meta["description"])
    source = source or graph.meta.get("file") or graph.name
    helper.set_model_props(model, {"spdnn_version": __version__, "source_spec": str(source), **model_props(graph)})
    return model, inits
