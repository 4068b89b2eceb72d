"""``spdnn-widths``: SPDNN step 5a, the widths of merged layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from spdnn.passes.base import PassResult
from spdnn.passes.spdnn.base import ModulePass
from spdnn.passes.spdnn.module import MergeModule

__all__ = ["SpdnnWidthsPass"]


@dataclass(frozen=True)
class SpdnnWidthsPass(ModulePass):
    """SPDNN step 5a: give every merged layer a width (output channels or features) from its members' widths.

    Thesis: S2 L2055-2060, S3 L3576-3582 (the merged network's size). Rules:
    :mod:`spdnn.merge.widths`: max (default), min or mean of the members' widths; ``sum`` is the
    warm start's rule (each member keeps its own channels at the offsets of
    :mod:`spdnn.merge.channel_layout`: members side by side, one shared layout for the blocks a
    residual add sums; blocks feeding the output keep the output width). Otherwise blocks summed
    by a residual add get one common width when the network is built
    (:mod:`spdnn.merge.to_network` rule 6).

    Reads ``layer_graph``; writes ``widths``.
    """

    name: ClassVar[str] = "spdnn-widths"

    policy: Literal["max", "min", "mean", "sum"] = "max"
    """How a merged layer's width comes from its members' widths."""

    def call(self, module: MergeModule) -> PassResult:
        from spdnn.merge.widths import member_widths, summed_widths  # imported here: spdnn.merge imports the passes

        lg = module.layer_graph
        module.analyses["widths_summed"] = self.policy == "sum"
        module.analyses["widths"] = summed_widths(lg) if self.policy == "sum" else member_widths(lg, self.policy)
        return PassResult(module, True)
