"""``spdnn-label-output``: SPDNN step 3, labelling from the output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from spdnn.passes.base import PassResult
from spdnn.passes.spdnn.base import ModulePass
from spdnn.passes.spdnn.module import MergeModule

__all__ = ["SpdnnLabelOutputPass"]


@dataclass(frozen=True)
class SpdnnLabelOutputPass(ModulePass):
    """SPDNN step 3: label every layer again with (structure, smallest distance to the output).

    Thesis: S1 L1186-1195. Rules: :mod:`spdnn.merge.label_output`: the structure is the one of
    step 1 (pooling part included); layers feeding the output have distance 1; residual adds
    add nothing to the distance.

    Relabels a copy of ``layer_graph`` (the stage ``contracted`` keeps its labels) and records
    it as the stage ``relabelled``.
    """

    name: ClassVar[str] = "spdnn-label-output"

    def call(self, module: MergeModule) -> PassResult:
        from spdnn.merge.label_output import label_from_output  # imported here: spdnn.merge imports the passes

        lg = label_from_output(module.layer_graph.copy())
        module.analyses["layer_graph"] = lg
        module.stages["relabelled"] = lg
        return PassResult(module, True)
