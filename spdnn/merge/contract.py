"""SPDNN steps 2 and 4: graph contraction (thesis S1 L1169-1182, L1197-1201; S2 L2039-2048).

Rules:
  1. All inputs are one node and all outputs are one node (the layer graph is built that way).
  2. Blocks with equal labels are merged into one block; the merged block keeps every in- and
     out-edge of its members ("while saving their connections", S2/S3); parallel edges collapse
     into one (rule 4 of S1). Where members disagree on what the label ignores (stride,
     activation, ...; the kind of pooling on a collapsed edge) the majority wins, ties to the
     alphabetically first parent (:mod:`spdnn.merge.decisions`).
  3. A merge must never create a cycle. Blocks are visited in topological order and each joins
     the first group with its label that it cannot reach and that cannot reach it; otherwise it
     starts a new group and the refusal is reported. Visiting in topological order, a block can
     never reach an earlier group, so only "the group reaches the block" needs checking: does the
     group reach one of the block's predecessor groups? Every group keeps the set of groups that
     reach it (a bitset, updated along successor edges when a merge adds edges), so each check
     is one bit test instead of a graph search.
  4. When every edge goes from a smaller to a larger label distance (always true after labelling
     from the input, whose distance is the longest path) no merge can close a cycle and the
     search is skipped: contraction is then linear in the graph size.
  5. A residual add (join block) never merges: its summands must keep their own shapes.
  6. With ``key="extended"`` blocks must also agree on stride, padding, dilation, groups and
     their tail ops (normalisation, activation, dropout) to merge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from spdnn.ir.naming import unique_name
from spdnn.merge.decisions import winning_edge, winning_member
from spdnn.merge.layer_graph import INPUT, JOIN, OUTPUT, Block, Edge, LayerGraph, format_label

__all__ = ["Contraction", "Refusal", "contract"]

LabelKey = Literal["paper", "extended"]


@dataclass(frozen=True)
class Refusal:
    """A merge of ``block`` into ``group`` that was refused because it would make a cycle."""

    block: str
    group: str
    label: str

    def __str__(self) -> str:
        return f"{self.block} not merged into {self.group} {self.label}: the group already reaches it"


@dataclass
class Contraction:
    """What a contraction did: the new graph, each new node's old nodes, refusals, and how many
    reachability searches (rule 3) it ran (0 when rule 4 made them unnecessary)."""

    graph: LayerGraph
    groups: dict[str, list[str]] = field(default_factory=dict)
    refused: list[Refusal] = field(default_factory=list)
    searches: int = 0


def _key(block: Block, key: LabelKey) -> tuple:
    return (block.label,) if key == "paper" else (block.label, block.extended_key())


def _monotone(lg: LayerGraph) -> bool:
    up = down = True
    for u, v in lg.edges():
        if u == INPUT or v == OUTPUT:
            continue
        du, dv = lg.block(u).label[1], lg.block(v).label[1]
        up &= du < dv
        down &= du > dv
        if not (up or down):
            return False
    return True


def contract(lg: LayerGraph, key: LabelKey = "paper", tag: str = "d") -> Contraction:
    """Merge equal-labelled blocks of ``lg`` (which is left unchanged) into a new graph.

    Args:
        lg: a labelled layer graph.
        key: "paper" (label only) or "extended" (label plus geometry and tail ops).
        tag: letter used in the names of merged nodes (``c3_d1``: 3x3 conv at distance 1).
    """
    order = lg.order()
    skip_search = _monotone(lg)
    candidates: dict[tuple, list[int]] = {}
    group_of: dict[str, int] = {}
    members: list[list[str]] = []
    reach = _Reachability()
    refused: list[tuple[str, int]] = []
    searches = 0
    for n in order:
        block = lg.block(n)
        if not skip_search:
            pred_groups = {group_of[p] for p in lg.predecessors(n, ordered=False)}
            reaching = reach.reaching_any(pred_groups)
        chosen = None
        mergeable = n not in (INPUT, OUTPUT) and block.kind != JOIN
        block_key = _key(block, key) if mergeable else None
        if mergeable:
            for g in candidates.get(block_key, ()):
                if skip_search:
                    chosen = g
                    break
                searches += 1
                if not reaching >> g & 1:
                    chosen = g
                    break
                refused.append((n, g))
        if chosen is None:
            chosen = len(members)
            members.append([])
            if not skip_search:
                reach.add_group()
            if mergeable:
                candidates.setdefault(block_key, []).append(chosen)
        members[chosen].append(n)
        if not skip_search:
            reach.add_edges(pred_groups, chosen, reaching)
        group_of[n] = chosen
    out, names = _build(lg, members, group_of, tag)
    return Contraction(
        out,
        groups={names[i]: list(m) for i, m in enumerate(members)},
        refused=[Refusal(n, names[g], format_label(lg.block(n).label)) for n, g in refused],
        searches=searches,
    )


class _Reachability:
    """Which groups reach which, in the quotient graph as it grows.

    ``reaching[g]`` is a bitset (an int) with bit ``h`` set when group ``h`` reaches ``g`` (``g``
    itself included). Invariant: along every edge ``a -> b``, ``reaching[b]`` contains
    ``reaching[a]``; so when new edges into a group add bits, the bits are pushed to its
    successors until a successor already has them all.
    """

    def __init__(self):
        self.reaching: list[int] = []
        self.successors: list[set[int]] = []

    def add_group(self) -> None:
        self.reaching.append(1 << len(self.reaching))
        self.successors.append(set())

    def reaching_any(self, groups: set[int]) -> int:
        """Groups reaching any of ``groups`` (those included)."""
        bits = 0
        for g in groups:
            bits |= self.reaching[g]
        return bits

    def add_edges(self, sources: set[int], target: int, bits: int) -> None:
        """Add edges ``sources -> target``; ``bits`` is ``reaching_any(sources)``."""
        for s in sources:
            self.successors[s].add(target)
        stack = [target]
        while stack:
            g = stack.pop()
            merged = self.reaching[g] | bits
            if merged != self.reaching[g]:
                self.reaching[g] = merged
                stack.extend(self.successors[g])


def _build(lg: LayerGraph, members: list[list[str]], group_of: dict[str, int], tag: str):
    out = LayerGraph(lg.name)
    out.copy_meta(lg)
    names: list[str] = []
    taken: set[str] = set(lg.order())  # merged names must not collide with any kept node id
    for nodes in members:
        first = lg.block(nodes[0])
        if len(nodes) == 1:
            name = nodes[0]
        else:
            name = unique_name(f"{first.slug}_{tag}{first.label[1]}", taken)
        taken.add(name)
        names.append(name)
        if len(nodes) == 1:
            block = Block(first.kind, first.layer, first.tail, first.pooling, list(first.members), first.label)
        else:
            merged = [m for n in nodes for m in lg.block(n).members]
            winner = winning_member(merged)
            block = Block(first.kind, winner.op, winner.tail, first.pooling, merged, first.label)
        out.add(name, block)
    collapsed: dict[tuple[str, str], list[Edge]] = {}
    for u, v in lg.edges():
        gu, gv = names[group_of[u]], names[group_of[v]]
        if gu != gv:
            collapsed.setdefault((gu, gv), []).append(lg.edge(u, v))
    for (gu, gv), edges in collapsed.items():
        out.connect(gu, gv, winning_edge(edges))
    return out, names

