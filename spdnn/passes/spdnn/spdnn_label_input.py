"""``spdnn-label-input``: SPDNN step 1, labelling from the input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from spdnn.passes.base import PassResult
from spdnn.passes.spdnn.base import ModulePass
from spdnn.passes.spdnn.module import MergeModule

__all__ = ["SpdnnLabelInputPass"]


@dataclass(frozen=True)
class SpdnnLabelInputPass(ModulePass):
    """SPDNN step 1: translate the parents into one layer graph and label every layer (structure, longest distance from the input).

    Thesis: S1 L1134-1157 ("label from the input"), S3 L3379-3406 (pooling is not a node, sticky
    pooling in the label). Rules: :mod:`spdnn.merge.layer_graph` (translation: one node per
    conv/transposed conv/FC layer; pooling and reshapes on the edges; residual adds as join
    blocks; inner channel concatenations as several in-edges) and
    :mod:`spdnn.merge.label_input` (labels): a label is (structure, distance), the structure
    ``kC``/``kT``/``nF`` plus the accumulated pooling ``mP``, the distance the number of layers
    on the longest path from the input (adds do not count).

    Writes ``layer_graph`` and the stage ``parents``; an existing layer graph is relabelled.
    """

    name: ClassVar[str] = "spdnn-label-input"

    def call(self, module: MergeModule) -> PassResult:
        from spdnn.merge.label_input import label_from_input
        from spdnn.merge.layer_graph import from_networks  # imported here: spdnn.merge imports the passes

        lg = module.analyses.get("layer_graph") or from_networks(module.parents, module.name)
        label_from_input(lg)
        module.analyses["layer_graph"] = lg
        module.stages["parents"] = lg  # contraction leaves its input unchanged: no copy needed
        return PassResult(module, True)
