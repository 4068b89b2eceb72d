"""``spdnn-to-network``: SPDNN step 5b, back to an IR network (optionally within a budget)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from spdnn.ir.graph import Graph
from spdnn.passes.base import PassResult
from spdnn.passes.spdnn.base import ModulePass
from spdnn.passes.spdnn.module import MergeModule

__all__ = ["SpdnnToNetworkPass"]


@dataclass(frozen=True)
class SpdnnToNetworkPass(ModulePass):
    """SPDNN step 5b: rebuild the merged network from the layer graph, concatenating where a layer has several producers.

    Thesis: S1 L1204-1206 (each node back to its layer), S2 L2050-2053 (concatenation), App. B
    L2585-2589 and L3446-3448 (alignment "with the pooling qualities taken from their original
    networks"), S3 L3433-3438 (pooling recalled from the original network). Rules:
    :mod:`spdnn.merge.to_network` (alignment by pooling, unpooling and centre cropping; output
    head; residual adds and their tied widths) and, with a budget, :func:`spdnn.merge.fit_budget`
    (one common width factor to within 2% of the budget).

    Reads ``layer_graph`` and ``widths`` (max of the members' when absent); writes ``network``,
    the final ``widths`` and the stage ``final``, and, for passes that change the network after
    it, ``build`` ((layer graph, widths) -> network), ``budget`` (a count or None) and ``widths_before_budget``.
    """

    name: ClassVar[str] = "spdnn-to-network"

    align: Literal["auto", "pool", "unpool"] = "auto"
    """Resolution alignment at concatenations: auto (per branch, from its parent), pool or unpool (override)."""
    head_kernel: Annotated[int, Field(ge=1)] = 3
    """Kernel of the output head's conv when several blocks feed the output."""
    budget: Annotated[int, Field(ge=1)] | Literal["largest"] | None = None
    """Parameter budget: a count, 'largest' (the largest parent's count) or none."""

    def call(self, module: MergeModule) -> PassResult:
        from spdnn.merge.layer_graph import MergeError
        from spdnn.merge.to_network import to_network
        from spdnn.summary import totals
        from spdnn.merge.widths import fit_budget, member_widths  # imported here: spdnn.merge imports the passes

        lg = module.layer_graph
        widths = module.analyses.get("widths") or member_widths(lg)

        def build(w: dict[str, int]) -> Graph:
            return to_network(lg, w, self.align, self.head_kernel)

        budget = self.budget
        if budget == "largest":
            budget = max(totals(p)[0] for p in module.parents)
        # what a later pass that changes the network (spdnn-merge-head) needs to refit the budget
        module.analyses.update(build=lambda layer_graph, w: to_network(layer_graph, w, self.align, self.head_kernel),
                               budget=budget, widths_before_budget=dict(widths))
        if budget is not None:
            if module.analyses.get("widths_summed"):
                raise MergeError("a parameter budget cannot be combined with init_from_parents: the warm start "
                                 "needs every member's channels (widths summed); drop one of the two")
            widths, _ = fit_budget(lg, widths, budget, lambda w: totals(build(w))[0])
        module.analyses["widths"] = widths
        module.analyses["network"] = build(widths)
        module.stages.pop("final", None)  # last, after the stages it comes from
        module.stages["final"] = lg
        return PassResult(module, True)
