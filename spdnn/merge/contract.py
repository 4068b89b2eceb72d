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
from itertools import chain
from typing import Literal

from spdnn.ir.naming import unique_name
from spdnn.merge.decisions import winning_edge, winning_member
from spdnn.merge.layer_graph import INPUT, JOIN, OUTPUT, Block, Edge, LayerGraph, format_label, frozen_instance

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
    """What blocks must share to merge (rules 2 and 6)."""
    return block.label if key == "paper" else (block.label, block.extended_key())


def contract(lg: LayerGraph, key: LabelKey = "paper", tag: str = "d") -> Contraction:
    """Merge equal-labelled blocks of ``lg`` (which is left unchanged) into a new graph.

    Args:
        lg: a labelled layer graph.
        key: "paper" (label only) or "extended" (label plus geometry and tail ops).
        tag: letter used in the names of merged nodes (``c3_d1``: 3x3 conv at distance 1).
    """
    grouped = _group_monotone(lg, key)
    if grouped is not None:
        (members, group_of), refused, searches = grouped, [], 0
    else:
        members, group_of, refused, searches = _group_searching(lg, key)
    out, names = _build(lg, members, group_of, tag)
    return Contraction(
        out,
        groups={names[i]: list(m) for i, m in enumerate(members)},
        refused=_refusals(lg, refused, names),
        searches=searches,
    )


def _group_monotone(lg: LayerGraph, key: LabelKey) -> tuple[list[list[str]], dict[str, int]] | None:
    """Groups by rule 4 (each block joins the first group of its key), checking on the way that
    every edge between layers goes up in label distance, or every one down; None if not."""
    up = down = True
    distance: dict[str, int] = {}
    candidates: dict[tuple, int] = {}
    group_of: dict[str, int] = {}
    members: list[list[str]] = []
    for n, block, preds in lg.walk():  # producers come first: their distances are known
        if n != INPUT and n != OUTPUT:
            dv = distance[n] = block.label[1]
            for u in preds:
                if u != INPUT:
                    du = distance[u]
                    up &= du < dv
                    down &= du > dv
            if not (up or down):
                return None
            if block.kind != JOIN:
                block_key = _key(block, key)
                chosen = candidates.get(block_key)
                if chosen is not None:
                    members[chosen].append(n)
                    group_of[n] = chosen
                    continue
                candidates[block_key] = len(members)
        group_of[n] = len(members)
        members.append([n])
    return members, group_of


def _group_searching(lg: LayerGraph, key: LabelKey) -> tuple[list[list[str]], dict[str, int],
                                                            list[tuple[str, int]], int]:
    """Groups by rule 3: each block joins the first group of its key that does not reach it."""
    candidates: dict[tuple, list[int]] = {}
    group_of: dict[str, int] = {}
    members: list[list[str]] = []
    reach = _Reachability()
    refused: list[tuple[str, int]] = []
    searches = 0
    for n, block, preds in lg.walk():
        mergeable = n != INPUT and n != OUTPUT and block.kind != JOIN
        pred_groups = {group_of[p] for p in preds}
        reaching = reach.reaching_any(pred_groups)
        chosen = None
        block_key = _key(block, key) if mergeable else None
        if mergeable:
            for g in candidates.get(block_key, ()):
                searches += 1
                if not reaching >> g & 1:
                    chosen = g
                    break
                refused.append((n, g))
        if chosen is None:
            chosen = len(members)
            members.append([])
            reach.add_group()
            if mergeable:
                candidates.setdefault(block_key, []).append(chosen)
        members[chosen].append(n)
        reach.add_edges(pred_groups, chosen, reaching)
        group_of[n] = chosen
    return members, group_of, refused, searches


def _refusals(lg: LayerGraph, refused: list[tuple[str, int]], names: list[str]) -> list[Refusal]:
    labels: dict[str, str] = {}  # a block refused by several groups is formatted once
    out = []
    for n, g in refused:
        label = labels.get(n)
        if label is None:
            label = labels[n] = format_label(lg.block(n).label)
        out.append(frozen_instance(Refusal, block=n, group=names[g], label=label))
    return out


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
    taken = _Taken(lg)  # merged names must not collide with any kept node id
    block_of = lg.block
    for nodes in members:
        first = block_of(nodes[0])
        if len(nodes) == 1:
            name = nodes[0]
            block = Block(first.kind, first.layer, first.tail, first.pooling, list(first.members), first.label)
        else:
            name = unique_name(f"{first.slug}_{tag}{first.label[1]}", taken)
            merged = list(chain.from_iterable([block_of(n).members for n in nodes]))
            winner = winning_member(merged)
            block = Block(first.kind, winner.op, winner.tail, first.pooling, merged, first.label)
        taken.new.add(name)
        names.append(name)
        out.add(name, block)
    collapsed: dict[tuple[int, int], list[Edge]] = {}
    for u, v, edge in lg.edge_items():
        gu, gv = group_of[u], group_of[v]
        if gu != gv:
            found = collapsed.get((gu, gv))
            if found is None:
                collapsed[gu, gv] = [edge]
            else:
                found.append(edge)
    for (gu, gv), edges in collapsed.items():
        out.connect(names[gu], names[gv], winning_edge(edges))
    return out, names


class _Taken:
    """The node ids of a graph plus the names given so far (for :func:`unique_name`)."""

    def __init__(self, lg: LayerGraph):
        self.lg, self.new = lg, set()

    def __contains__(self, name: object) -> bool:
        return name in self.new or name in self.lg
