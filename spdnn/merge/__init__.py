"""SPDNN: merging several parent networks into one semi-parallel network (thesis §3.1).

Stages, each usable alone: :func:`from_networks` (parents -> layer graph), :func:`label_from_input`,
:func:`contract`, :func:`label_from_output`, :func:`contract` again, :func:`to_network`
(layer graph -> IR graph), with widths from :mod:`spdnn.merge.widths`. :func:`merge_networks`
runs them all. Choices between members that disagree follow :mod:`spdnn.merge.decisions`;
:func:`warm_start_weights` builds a merged network's weights from trained parents.
"""

from spdnn.merge.contract import Contraction, Refusal, contract
from spdnn.merge.decisions import Decision, decisions
from spdnn.merge.label_input import label_from_input
from spdnn.merge.label_output import label_from_output
from spdnn.merge.layer_graph import (
    Block,
    LayerGraph,
    Member,
    MergeError,
    format_label,
    from_networks,
)
from spdnn.merge.pipeline import MergeOptions, MergeResult, merge_networks
from spdnn.merge.render import stage_dot, stage_mermaid
from spdnn.merge.to_network import to_network
from spdnn.merge.warm_start import warm_start_weights
from spdnn.merge.widths import fit_budget, member_widths, summed_widths

__all__ = [
    "Block", "Contraction", "LayerGraph",
    "Member", "MergeError", "Refusal", "contract", "format_label", "from_networks", "label_from_input",
    "label_from_output", "MergeOptions", "MergeResult", "merge_networks", "stage_dot", "stage_mermaid",
    "to_network", "fit_budget", "member_widths", "summed_widths", "Decision", "decisions", "warm_start_weights",
]
