"""Layer options carried in an ONNX model's metadata, read back on import.

Rules:
  1. The exporter writes the non-default layer options (``trainable``, ``init``,
     ``spectral_norm``; :mod:`spdnn.layer_options`) of every layer as one JSON object in the
     model metadata ``spdnn_layer_options``: ``{"layer name": {"trainable": false}, ...}``.
  2. On import each entry is validated as a spec's layer options are and kept in the layer's
     metadata, so a frozen layer stays frozen and a spectrally normalised one keeps its
     reparametrisation when the model is trained again. The ONNX weight of such a layer is the
     normalised W / sigma; the torch backend loads it as the original weight with power-iteration
     vectors for which sigma is exactly 1, so the imported network computes what onnxruntime does.
  3. A value that is not a JSON object of objects, names a layer the graph does not have, or holds
     an invalid option is an ``OnnxModelError`` naming the layer; the metadata is bounded by the
     model size limit, and nesting deeper than a few levels is refused before parsing.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from spdnn.ir import meta as M
from spdnn.ir.graph import Graph
from spdnn.layer_options import METADATA_KEY, LayerOptions

from .validate import OnnxModelError

__all__ = ["attach_layer_options"]

_MAX_NESTING = 8


def attach_layer_options(graph: Graph, text: str, source: str, ir_name: Any) -> None:
    """Rules 2-3: validate ``text`` and store each layer's options in ``graph``."""
    if _nesting(text) > _MAX_NESTING:
        raise OnnxModelError(source, f"metadata {METADATA_KEY!r} nests deeper than {_MAX_NESTING} levels")
    try:
        entries = json.loads(text)
    except ValueError as e:
        raise OnnxModelError(source, f"metadata {METADATA_KEY!r} is not valid JSON ({e})") from None
    if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
        raise OnnxModelError(source, f"metadata {METADATA_KEY!r} must map layer names to option objects")
    for layer, values in entries.items():
        name = ir_name(layer)
        if name not in graph or graph.node(name).op in ("input", "output"):
            raise OnnxModelError(source, f"metadata {METADATA_KEY!r} names layer {layer!r}, which the graph does not have")
        try:
            options = LayerOptions.model_validate(values)
        except ValidationError as e:
            first = e.errors(include_url=False)[0]
            raise OnnxModelError(source, f"metadata {METADATA_KEY!r}: layer {layer!r}: {first['msg']}") from None
        if not options.is_default():
            graph.meta_of(name)[M.LAYER_OPTIONS] = options


def _nesting(text: str) -> int:
    depth = deepest = 0
    for bracket in re.findall(r'[{}\[\]]|"(?:[^"\\]|\\.)*"', text):
        if bracket in "{[":
            depth += 1
            deepest = max(deepest, depth)
        elif bracket in "}]":
            depth -= 1
    return deepest
