"""An ONNX model's bytes with its weights copied once (protobuf wire format, written directly).

Serialising a ``ModelProto`` that holds the weights copies every weight three times (numpy ->
bytes, bytes -> the message, the message -> the serialised string), and protobuf serialisation of
large ``raw_data`` fields is slow. Here the model is serialised without its initializers, and the
initializers are appended as protobuf fields whose ``raw_data`` is the weight's own buffer; one
``bytes.join`` copies each weight once.

Rules:
  1. The result parses to the same ``ModelProto`` as the model with its initializers added by
     ``onnx.numpy_helper.from_array`` (a test checks): fields are written in a different order,
     which the protobuf format allows; no field is written twice (Netron's reader replaces,
     rather than merges, a repeated message field).
  2. Weights are written little-endian and C-contiguous (a copy only when an array is not).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

__all__ = ["serialize_with_initializers"]

_LEN = 2  # wire type of length-delimited fields (bytes, strings, embedded messages)
_GRAPH = onnx.ModelProto.DESCRIPTOR.fields_by_name["graph"].number
_INITIALIZER = onnx.GraphProto.DESCRIPTOR.fields_by_name["initializer"].number
_RAW_DATA = onnx.TensorProto.DESCRIPTOR.fields_by_name["raw_data"].number


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int) -> bytes:
    return _varint(field << 3 | _LEN)


def _little_endian(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, array.dtype.newbyteorder("<"))


def _tensor_parts(name: str, array: np.ndarray) -> tuple[list, int]:
    """The parts of one ``TensorProto`` (header fields, then raw_data) and their total length."""
    array = _little_endian(array)
    header = onnx.TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(array.dtype),
                              dims=array.shape).SerializeToString()
    raw = memoryview(array).cast("B") if array.size else memoryview(b"")  # no copy
    raw_key = _key(_RAW_DATA) + _varint(raw.nbytes)
    return [header, raw_key, raw], len(header) + len(raw_key) + raw.nbytes


def serialize_with_initializers(model: onnx.ModelProto, initializers: list[tuple[str, np.ndarray]]) -> bytes:
    """``model`` (whose graph has no initializers) with ``initializers`` added, serialised."""
    graph = model.graph
    if len(graph.initializer):
        raise ValueError("the model already has initializers")
    graph_parts = [graph.SerializeToString()]
    graph_size = len(graph_parts[0])
    for name, array in initializers:
        parts, size = _tensor_parts(name, array)
        head = _key(_INITIALIZER) + _varint(size)
        graph_parts += [head, *parts]
        graph_size += len(head) + size
    rest = onnx.ModelProto()
    rest.CopyFrom(model)
    rest.ClearField("graph")
    return b"".join([rest.SerializeToString(), _key(_GRAPH), _varint(graph_size), *graph_parts])
