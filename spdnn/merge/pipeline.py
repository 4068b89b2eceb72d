"""The whole SPDNN merge (thesis S1 L1113-1123): parents -> label from input -> contract ->
label from output -> contract -> widths -> network, with a report of every step.

The steps are the registered stage passes of :mod:`spdnn.passes.spdnn`, run in that order over
a :class:`~spdnn.passes.spdnn.MergeModule` (:func:`merge_pipeline` lists them for a set of
options); :func:`merge_networks` stays the public entry point."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from spdnn.ir.graph import Graph
from spdnn.merge.contract import Contraction, LabelKey
from spdnn.merge.decisions import RULE, Decision, decisions
from spdnn.merge.layer_graph import LayerGraph, MergeError, format_label
from spdnn.merge.to_network import ALIGNS, Align
from spdnn.merge.widths import POLICIES
from spdnn.passes.base import Pass, PassManager
from spdnn.summary import Summary, summarize, totals

__all__ = ["MergeOptions", "MergeResult", "merge_networks", "merge_pipeline"]


@dataclass(frozen=True)
class MergeOptions:
    """Options of :func:`merge_networks`.

    Attributes:
        key: "paper" merges on the thesis's label (kernel/width, pooling, distance); "extended" also
            requires equal stride, padding, dilation, groups, normalisation and activation.
        align: how concatenated tensors of different resolutions are aligned: "auto" (default)
            brings every branch to the resolution the merged layer's members saw in their parents
            (majority, ties to the alphabetically first parent), pooling it with its own parent's
            pooling op or repeat-unpooling it; "pool" / "unpool" override that with the smallest /
            largest resolution for every concatenation.
        width_policy: "max", "min" or "mean" of the members' widths.
        budget: None, a parameter count, or "largest" (the largest parent's count).
        head_kernel: kernel of the output head's conv when the last layers do not merge.
        output_pass: run steps 3-4 (label from the output, contract again); the thesis's S2/S3
            write-ups stop after the first contraction.
        init_from_parents: build the network for a warm start from trained parents
            (:mod:`spdnn.merge.warm_start`): every merged layer's width is the sum of its members'
            widths (the layer feeding the output keeps the output width); ``budget`` is refused.
    """

    key: LabelKey = "paper"
    align: Align = "auto"
    width_policy: str = "max"
    budget: int | Literal["largest"] | None = None
    head_kernel: int = 3
    output_pass: bool = True
    init_from_parents: bool = False
    head: str | None = None


@dataclass
class MergeResult:
    """A merged network and how it came about."""

    graph: Graph
    parents: list[Graph]
    stages: dict[str, LayerGraph]
    contractions: list[Contraction]
    widths: dict[str, int]
    options: MergeOptions
    parent_totals: dict[str, tuple[int, int]] = field(default_factory=dict)
    summary: Summary | None = None
    #: what spdnn-merge-head did: spec, description, branches, removed nodes (None without a head)
    head: dict[str, Any] | None = None

    @property
    def final(self) -> LayerGraph:
        return self.stages["final"]

    def decisions(self) -> list[Decision]:
        """Every merge that dropped information (see :mod:`spdnn.merge.decisions`)."""
        return decisions(self.final)

    def warnings(self) -> list[str]:
        """Console lines: one per merge that dropped information, and one when the merged
        network is larger than its parents together."""
        lines = [f"warning: {d.line()}" for d in self.decisions()]
        params = self.report()["reduction_percent"]["params"]
        if params < 0:
            lines.append(f"warning: the merged network has {-params}% more parameters than its parents together")
        return lines

    def report(self) -> dict[str, Any]:
        """Merged nodes with labels and origins; parameter and FLOP counts with the reduction.

        ``reduction_percent`` is ``100 * (1 - merged / sum of parents)``: positive when the merged
        network is smaller ("N% fewer"), negative when it is larger ("N% more"). ``decisions``
        lists every merge that dropped information, with the member that won and the rule;
        ``head`` (only with a merge head) what ``spdnn-merge-head`` did: the spec and its
        description, the branches and the blocks it removed."""
        parents = {name: {"params": p, "flops": f} for name, (p, f) in self.parent_totals.items()}
        total_p = sum(p["params"] for p in parents.values())
        total_f = sum(p["flops"] for p in parents.values())
        merged = {"params": self.summary.total_params, "flops": self.summary.total_flops}
        final = self.final
        return {
            "model": self.graph.name,
            # without a head the report reads as before the option existed
            "options": {k: getattr(self.options, k) for k in self.options.__dataclass_fields__
                        if k != "head" or self.options.head is not None},
            "nodes": [
                {"node": n, "label": format_label(final.block(n).label),
                 "input_side_labels": self._input_labels(n),
                 "width": self.widths.get(n), "from": [str(m) for m in final.block(n).members]}
                for n in final.layers()
            ],
            "refused_merges": [str(r) for c in self.contractions for r in c.refused],
            "decision_rule": RULE,
            "decisions": [d.to_dict() for d in self.decisions()],
            **({"head": self.head} if self.head else {}),
            "parents": parents,
            "sum_of_parents": {"params": total_p, "flops": total_f},
            "merged": merged,
            "reduction_percent": {
                "params": round(100 * (1 - merged["params"] / total_p), 2) if total_p else 0.0,
                "flops": round(100 * (1 - merged["flops"] / total_f), 2) if total_f else 0.0,
            },
        }

    def _input_labels(self, node: str) -> list[str]:
        """Distinct input-side labels of the parent layers merged into ``node``."""
        first = self.stages["parents"]
        labels = (first.block(f"{m.parent}__{m.layer}").label for m in self.final.block(node).members)
        return list(dict.fromkeys(format_label(lb) for lb in labels))

    def report_markdown(self) -> str:
        r = self.report()
        lines = [f"# SPDNN merge: {r['model']}", "",
                 f"Parents: {', '.join(r['parents'])}. Options: {r['options']}.", "",
                 "| node | final label | input-side labels | width | from parent layers |",
                 "|---|---|---|---:|---|"]
        removed = set(r["head"]["removed"]) if "head" in r else set()
        for n in r["nodes"]:
            width = "removed by the head" if n["node"] in removed else n["width"]
            lines.append(f"| {n['node']} | {n['label']} | {' '.join(n['input_side_labels'])} | {width} | "
                         f"{', '.join(n['from'])} |")
        lines += ["", "| network | params | FLOPs |", "|---|---:|---:|"]
        for name, c in r["parents"].items():
            lines.append(f"| {name} | {c['params']:,} | {c['flops']:,} |")
        lines.append(f"| sum of parents | {r['sum_of_parents']['params']:,} | {r['sum_of_parents']['flops']:,} |")
        lines.append(f"| **merged** | **{r['merged']['params']:,}** | **{r['merged']['flops']:,}** |")
        red = r["reduction_percent"]
        lines += ["", f"Against the sum of parents: {_change(red['params'])} parameters, "
                      f"{_change(red['flops'])} FLOPs."]
        if "head" in r:
            h = r["head"]
            lines += ["", f"Head (spdnn-merge-head): `{h['spec']}` after the branches {', '.join(h['branches'])}, "
                          f"concatenated pooled and unpooled; removed: {', '.join(h['removed']) or 'nothing'}."]
            if h["description"]:
                lines += ["", h["description"]]
        lines += ["", f"Merges that dropped information (rule: {r['decision_rule']}):"]
        lines += [f"- {d.line()}" for d in self.decisions()] or ["- none"]
        if r["refused_merges"]:
            lines += ["", "Refused merges (they would have made a cycle):", *(f"- {x}" for x in r["refused_merges"])]
        return "\n".join(lines) + "\n"


def _change(reduction: float) -> str:
    """``12.5% fewer`` / ``3.1% more`` from a reduction percentage."""
    return f"{reduction}% fewer" if reduction >= 0 else f"{-reduction}% more"


def merge_networks(parents: list[Graph], name: str = "merged", options: MergeOptions | None = None) -> MergeResult:
    """Merge parent networks into one SPDNN network.

    Raises:
        MergeError: parents that cannot be merged, or a budget that cannot be met.
    """
    options = options or MergeOptions()
    with _collector_paused():
        return _merge(parents, name, options)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while merging.

    A merge allocates several container objects per layer node and keeps nearly all of them, so
    the collector's passes find no garbage but each full pass walks every object alive, the
    parents' graphs included: at 100k layer nodes that was about a third of the merge time.
    Reference counting still frees everything as usual; the previous state is restored after.

    Re-enabling alone would make the next young-generation pass walk every object the merge
    kept (a fifth of a 100k-node merge). ``gc.freeze()`` then ``gc.unfreeze()`` moves every
    tracked object into the oldest generation without walking them, so that pass is skipped;
    cyclic garbage among them is still found by the next full collection. Skipped when the
    program has frozen objects of its own (unfreezing would release them).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def merge_pipeline(options: MergeOptions) -> list[Pass]:
    """The stage passes (:mod:`spdnn.passes.spdnn`) that ``merge_networks`` runs for ``options``."""
    from spdnn.passes.spdnn import (
        SpdnnContractPass,
        SpdnnLabelInputPass,
        SpdnnLabelOutputPass,
        SpdnnToNetworkPass,
        SpdnnWidthsPass,
    )
    from spdnn.passes.registry import get_pass

    passes: list[Pass] = [SpdnnLabelInputPass(), SpdnnContractPass(key=options.key)]
    if options.output_pass:
        passes += [SpdnnLabelOutputPass(), SpdnnContractPass(key=options.key)]
    if options.budget is not None and not (options.budget == "largest" or
                                           (isinstance(options.budget, int) and options.budget >= 1)):
        raise MergeError(f"budget must be a positive parameter count or 'largest', got {options.budget!r}")
    passes += [SpdnnWidthsPass(policy="sum" if options.init_from_parents else _policy(options.width_policy)),
               SpdnnToNetworkPass(align=_align(options.align), head_kernel=options.head_kernel,
                                  budget=options.budget)]
    if options.head is not None:
        passes.append(get_pass("spdnn-merge-head", {"head": options.head}))
    return passes


def _policy(policy: str) -> str:
    if policy not in POLICIES:
        raise MergeError(f"unknown width policy {policy!r}; choose one of {', '.join(POLICIES)}")
    return policy


def _align(align: str) -> str:
    if align not in ALIGNS:
        raise MergeError(f"unknown alignment {align!r}; choose one of {', '.join(ALIGNS)}")
    return align


def _merge(parents: list[Graph], name: str, options: MergeOptions) -> MergeResult:
    from spdnn.passes.spdnn import MergeModule

    if options.init_from_parents:
        if options.head is not None:
            raise MergeError("a merge head cannot be combined with init_from_parents: the head's layers have no "
                             "trained parent to start from")
        if options.budget is not None:
            raise MergeError("a parameter budget cannot be combined with init_from_parents: the warm start needs "
                             "every member's channels (widths summed); drop one of the two")
    module = MergeModule.of(parents, name)
    PassManager(merge_pipeline(options), verify_each=False).run(module)
    a = module.analyses
    graph = a["network"]
    graph.meta["spdnn_merge"] = {"parents": sorted(p.name for p in parents)}
    parent_totals = {p.name: totals(p) for p in module.parents}
    return MergeResult(graph, parents, dict(module.stages), list(module.contractions), a["widths"], options,
                       parent_totals, summarize(graph), a.get("head"))
