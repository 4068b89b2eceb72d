"""SPDNN step 3: label every layer from the output side (thesis S1 L1186-1195).

Rules:
  1. A layer's label is (structure, smallest distance to the output node); the structure is the
     one of step 1 (pooling part included).
  2. Layers feeding the output have distance 1; the output node itself 0 and no label.
"""

from __future__ import annotations

from collections import deque

from spdnn.merge.layer_graph import INPUT, OUTPUT, LayerGraph

__all__ = ["label_from_output"]


def label_from_output(lg: LayerGraph) -> LayerGraph:
    """Label every block in place with (structure, smallest distance to the output)."""
    distance = {OUTPUT: 0}
    queue = deque([OUTPUT])
    while queue:  # breadth-first on reversed edges gives smallest distances
        n = queue.popleft()
        for p in lg.predecessors(n, ordered=False):
            if p not in distance:
                distance[p] = distance[n] + 1
                queue.append(p)
    for n in lg.order():
        block = lg.block(n)
        if n == INPUT:
            block.label = ("input", 0)
        elif n == OUTPUT:
            block.label = None
        else:
            block.label = (block.structure, distance[n])
    return lg

