"""SPDNN step 3: label every layer from the output side (thesis S1 L1186-1195).

Rules:
  1. A layer's label is (structure, smallest distance to the output node); the structure is the
     one of step 1 (pooling part included).
  2. Layers feeding the output have distance 1; the output node itself 0 and no label.
  3. A residual add (join block) is not a layer: it adds nothing to the distance of the layers
     before it and takes the smallest distance of its successors, e.g. ``(+,1)`` before the
     last layer.
"""

from __future__ import annotations

from spdnn.merge.layer_graph import INPUT, JOIN, OUTPUT, LayerGraph

__all__ = ["label_from_output"]


def label_from_output(lg: LayerGraph) -> LayerGraph:
    """Label every block in place with (structure, smallest distance to the output)."""
    distance = {OUTPUT: 0}
    for n in reversed(lg.order()):  # successors first: a shortest path in one sweep of the DAG
        if n == OUTPUT:
            continue
        step = 0 if lg.block(n).kind == JOIN else 1
        distance[n] = step + min(distance[s] for s in lg.successors(n, ordered=False))
    for n in lg.order():
        block = lg.block(n)
        if n == INPUT:
            block.label = ("input", 0)
        elif n == OUTPUT:
            block.label = None
        else:
            block.label = (block.structure, distance[n])
    return lg
