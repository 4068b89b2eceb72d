"""``spdnn-contract``: SPDNN steps 2 and 4, graph contraction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from spdnn.passes.base import PassResult
from spdnn.passes.spdnn.base import ModulePass
from spdnn.passes.spdnn.module import MergeModule

__all__ = ["SpdnnContractPass"]


@dataclass(frozen=True)
class SpdnnContractPass(ModulePass):
    """SPDNN steps 2 and 4: merge the layers with equal labels into one layer, keeping their connections and refusing merges that would make a cycle.

    Thesis: S1 L1169-1182 and L1197-1201 (contraction after each labelling), S2 L2039-2048
    ("merged while saving their connections"). Rules: :mod:`spdnn.merge.contract`: all inputs
    are one node and all outputs one node; equal-labelled blocks merge, visited in topological
    order, each into the first group of its label that does not reach it; parallel edges
    collapse; members that disagree on what the label ignores are decided by
    :mod:`spdnn.merge.decisions` (majority, ties to the alphabetically first parent). Residual
    adds never merge.

    Reads and replaces ``layer_graph``; appends to ``contractions``; the stage ``contracted``
    is the graph after the first contraction.
    """

    name: ClassVar[str] = "spdnn-contract"

    key: Literal["paper", "extended"] = "paper"
    """paper: merge on the thesis's label; extended: also on stride, padding, dilation, groups and tail ops."""
    tag: Literal["auto", "d", "o"] = "auto"
    """Letter in merged node names (c3_d1): auto is d for the first contraction, o after."""

    def call(self, module: MergeModule) -> PassResult:
        from spdnn.merge.contract import contract  # imported here: spdnn.merge imports the passes

        tag = self.tag if self.tag != "auto" else ("d" if not module.contractions else "o")
        result = contract(module.layer_graph, self.key, tag=tag)
        module.contractions.append(result)
        module.analyses["layer_graph"] = result.graph
        module.stages.setdefault("contracted", result.graph)
        return PassResult(module, any(len(m) > 1 for m in result.groups.values()))
