"""SPDNN step 1: label every layer from the input side (thesis S1 L1134-1157, S3 L3390-3406).

Rules:
  1. A layer's label is (structure, distance from the input): ``(3C,1)``, ``(30F,5)``, ``(3C8P,4)``.
  2. Structure: conv kernel ``kC`` (transposed conv ``kT``), fully connected width ``nF``, plus
     the accumulated pooling ``mP`` (product of the sticky pooling stack; absent when 1).
  3. Distance counts layer nodes only (pooling is not a node, S3 L3379-3382) along the *longest*
     path from the input, so chains get their layer index. (The thesis uses chains only; the
     longest path also makes every edge go from a smaller to a larger distance, which keeps the
     first contraction acyclic.)
  4. The input is labelled ``(input,0)``; the output node gets no label (it is merged anyway).
  5. A residual add (join block, layer_graph rule 5) is not a layer: its distance is the largest
     of its summands', and the layer after it counts one more; its structure is ``+`` (with
     the pooling part), e.g. ``(+,2)``. A branch of a parent is an out-edge, an inner channel
     concatenation several in-edges: the longest path covers both.
"""

from __future__ import annotations

from spdnn.merge.layer_graph import INPUT, JOIN, OUTPUT, LayerGraph

__all__ = ["label_from_input"]


def label_from_input(lg: LayerGraph) -> LayerGraph:
    """Label every block in place with (structure, longest distance from the input)."""
    distance: dict[str, int] = {}
    for n, block, preds in lg.walk():
        if n == INPUT:
            distance[n] = 0
        elif n == OUTPUT:
            block.label = None
            continue
        else:
            longest = max(map(distance.__getitem__, preds)) if len(preds) > 1 else distance[next(iter(preds))]
            distance[n] = longest + (0 if block.kind == JOIN else 1)
        block.label = (block.structure, distance[n])
    return lg
