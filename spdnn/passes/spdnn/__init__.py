"""The SPDNN merge as registered passes over a :class:`MergeModule` (thesis §3.1 steps 1-5):

``spdnn-label-input`` -> ``spdnn-contract`` -> ``spdnn-label-output`` -> ``spdnn-contract``
-> ``spdnn-widths`` -> ``spdnn-to-network``. :func:`spdnn.merge.merge_networks` runs this
pipeline; each stage also runs alone::

    from spdnn.passes import run_pipeline
    from spdnn.passes.spdnn import MergeModule
    module = MergeModule.of(parents)
    run_pipeline(module, "spdnn-label-input,spdnn-contract")
    module.layer_graph.structure()   # inspect, change, or continue with your own pass

``spdnn-merge-head`` (App. B) may follow ``spdnn-to-network``: both concatenation forms of the
parallel branches, then a head network from a spec (``MergeOptions(head=...)``).
"""

from spdnn.passes.spdnn.base import ModulePass
from spdnn.passes.spdnn.module import MergeModule
from spdnn.passes.spdnn.spdnn_contract import SpdnnContractPass
from spdnn.passes.spdnn.spdnn_label_input import SpdnnLabelInputPass
from spdnn.passes.spdnn.spdnn_label_output import SpdnnLabelOutputPass
from spdnn.passes.spdnn.spdnn_merge_head import SpdnnMergeHeadPass
from spdnn.passes.spdnn.spdnn_to_network import SpdnnToNetworkPass
from spdnn.passes.spdnn.spdnn_widths import SpdnnWidthsPass

__all__ = ["MergeModule", "ModulePass", "SPDNN_STAGES", "SpdnnContractPass", "SpdnnLabelInputPass",
           "SpdnnLabelOutputPass", "SpdnnMergeHeadPass", "SpdnnToNetworkPass", "SpdnnWidthsPass"]

#: The stage passes in pipeline order (spdnn-contract runs twice, after each labelling).
SPDNN_STAGES = (SpdnnLabelInputPass, SpdnnContractPass, SpdnnLabelOutputPass, SpdnnWidthsPass,
                SpdnnToNetworkPass)
