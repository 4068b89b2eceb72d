"""The object the SPDNN stage passes share: ordered named parent graphs plus analyses.

A compiler pass normally takes one IR graph; SPDNN merging takes several. A :class:`MergeModule`
holds the parents (ordered by name, so the order they were given never matters) and what the
stages compute, under fixed keys of ``analyses``:

- ``layer_graph``: the current labelled layer graph (:class:`spdnn.merge.LayerGraph`);
- ``stages``: snapshots by name: ``parents`` (labelled from the input), ``contracted``,
  ``relabelled`` (labelled from the output) and ``final`` (the layer graph the network is built from);
- ``contractions``: every :class:`spdnn.merge.Contraction`, in order;
- ``widths``: the width of every layer block;
- ``network``: the merged IR graph.

A user may stop after any stage, look at ``module.layer_graph``, change it, or run their own
pass in place of one stage; the next stage reads only these keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spdnn.errors import SpdnnError
from spdnn.ir.graph import Graph

if TYPE_CHECKING:  # spdnn.merge imports the passes: the stage passes import it only when they run
    from spdnn.merge.layer_graph import LayerGraph

__all__ = ["MergeModule"]


@dataclass
class MergeModule:
    """Parent networks to merge (by name) and the analyses of the stages run so far."""

    name: str
    graphs: dict[str, Graph]
    analyses: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, parents: list[Graph], name: str = "merged") -> MergeModule:
        """A module of ``parents`` ordered by name; two parents of one name are refused."""
        from spdnn.merge.layer_graph import MergeError

        graphs: dict[str, Graph] = {}
        for parent in sorted(parents, key=lambda p: p.name):
            if parent.name in graphs:
                raise MergeError(f"two parents are called {parent.name!r}; parent names must differ")
            graphs[parent.name] = parent
        return cls(name, graphs, {"stages": {}, "contractions": []})

    @property
    def parents(self) -> list[Graph]:
        return list(self.graphs.values())

    @property
    def layer_graph(self) -> LayerGraph:
        """The current layer graph; a clear error before the first stage made one."""
        try:
            return self.analyses["layer_graph"]
        except KeyError:
            raise SpdnnError("no layer graph yet: run spdnn-label-input first") from None

    @property
    def stages(self) -> dict[str, LayerGraph]:
        return self.analyses.setdefault("stages", {})

    @property
    def contractions(self) -> list:
        return self.analyses.setdefault("contractions", [])

    def verify(self) -> None:
        """What the pass manager checks after each stage: the network (once built) verifies."""
        network = self.analyses.get("network")
        if network is not None:
            network.verify()
