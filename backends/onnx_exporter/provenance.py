"""Where each ONNX node and the model came from, written where Netron shows it.

Rules:
  1. A node's ``doc_string`` lists, one per line: the layer's spec citation (``source: ...``), where
     the layer is written (``spec: p1.yaml:21 (layers[0])``), and for an SPDNN-merged network the
     block's label (``SPDNN label: (3C,4)``) and the parent layers it stands for
     (``merged from: iris_p1.conv4, iris_p2.conv4``). Lines with nothing to say are left out.
  2. Every ONNX node an IR node expands into carries that IR node's doc string.
  3. Model metadata adds the spec's citation (``source_citation``, JSON) and, for a merged network,
     its parents (``spdnn_merge_parents``, comma-separated); the model's ``doc_string`` is the
     spec's description.
  4. Non-default layer options (frozen, init rules, spectral norm) go to the metadata
     ``spdnn_layer_options`` (JSON; :mod:`spdnn.frontends.onnx_importer.layer_options`), so the
     importer brings them back.
"""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

from spdnn.ir import meta as M
from spdnn.ir.graph import Graph
from spdnn.layer_options import METADATA_KEY, options_json

__all__ = ["node_doc", "model_props"]


def node_doc(graph: Graph, name: str) -> str:
    meta = graph.meta_of(name)
    lines = []
    if meta.get(M.SOURCE):
        lines.append(f"source: {meta[M.SOURCE]}")
    origin = meta.get(M.ORIGIN)
    if origin is not None and origin.line:
        where = f" ({origin.where})" if origin.where else ""
        lines.append(f"spec: {PurePath(origin.file).name}:{origin.line}{where}")
    if meta.get(M.SPDNN_LABEL):
        lines.append(f"SPDNN label: {meta[M.SPDNN_LABEL]}")
    if meta.get(M.MERGED_FROM):
        lines.append(f"merged from: {', '.join(meta[M.MERGED_FROM])}")
    return "\n".join(lines)


def model_props(graph: Graph) -> dict[str, str]:
    props = {}
    citation: Any = graph.meta.get("source")
    if citation:
        props["source_citation"] = json.dumps(citation, sort_keys=True, default=str)
    parents = (graph.meta.get("spdnn_merge") or {}).get("parents")
    if parents:
        props["spdnn_merge_parents"] = ", ".join(parents)
    options = {n.name: graph.meta_of(n.name)[M.LAYER_OPTIONS] for n in graph
               if graph.meta_of(n.name).get(M.LAYER_OPTIONS) is not None}
    if options:
        props[METADATA_KEY] = options_json(options)
    return props
