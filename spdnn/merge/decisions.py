"""Choices a merge makes between its members, and the report of what they dropped.

The thesis's label (kernel or width, pooling, distance) ignores stride, padding, normalisation,
activation and the kind of pooling on an edge, so one merged layer or edge can stand for parent
layers or edges that disagree on them. It keeps one version; the rule is

  **the majority of the members, ties to the alphabetically first parent** (then layer name).

It never depends on the order the parents were given. Decided this way:
  1. a merged layer's op and tail ops (stride, padding, dilation, groups, bias; normalisation,
     activation, dropout) and its layer options (frozen, init, spectral norm) -- all members'
     "variants" (:meth:`Member.variant`) vote;
  2. a collapsed edge's transitions (pooling kind and size, unpooling, flatten/reshape) -- every
     parent edge it stands for votes;
  3. the input resolution of a merged layer whose members saw different ones (``align="auto"``
     in :mod:`spdnn.merge.to_network`) -- the members vote.

:func:`decisions` lists, per merged node or edge and per aspect, the version kept, the member
that won, the versions dropped and why.
"""

from __future__ import annotations

import json
import operator
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TypeVar

from spdnn.merge.layer_graph import POOL_OPS, UNPOOL_OPS, Edge, LayerGraph, Member, Op

__all__ = ["Decision", "decisions", "vote", "winning_member", "winning_edge", "resolution_member", "RULE"]

RULE = "majority of the members, ties to the alphabetically first parent"
T = TypeVar("T")


def vote(items: Sequence[T], key: Callable[[T], Hashable], name: Callable[[T], tuple]) -> tuple[T, int]:
    """The item whose key most items share, ties to the smallest ``name``; and that key's count.

    Keys are counted by identity first and the distinct objects then by value: members read
    from one parent set share their key objects, so a vote over thousands of members hashes a
    few keys instead of every one (a key's hash is a walk over nested tuples and attributes)."""
    keys = list(map(key, items))
    by_id = Counter(map(id, keys))
    if len(by_id) > 1:
        distinct = {id(k): k for k in keys}
        by_value = Counter()
        for i, k in distinct.items():
            by_value[k] += by_id[i]
        if len(by_value) > 1:
            count_of = {i: by_value[k] for i, k in distinct.items()}
            best = max(by_value.values())
            return min((item for item, k in zip(items, keys) if count_of[id(k)] == best), key=name), best
    return min(items, key=name), len(items)


def winning_member(members: Sequence[Member]) -> Member:
    """The member whose layer op and tail a merged layer keeps (rule 1)."""
    if len(members) == 1:
        return members[0]
    return vote(members, Member.variant, _member_name)[0]


def winning_edge(edges: Sequence[Edge]) -> Edge:
    """One edge standing for all of ``edges`` (collapsed by a contraction), with the
    transitions that most of their parent edges carry (rule 2)."""
    if len(edges) == 1:
        return edges[0]
    sources = tuple(chain.from_iterable([e.sources for e in edges]))
    (parent, transitions), _ = vote(sources, _transitions_key, _source_parent)
    return Edge(transitions, sources, parent)


_in_size: Callable[[Member], tuple[int, ...]] = operator.attrgetter("in_size")
#: what ties are broken by: (parent, layer)
_member_name: Callable[[Member], tuple] = operator.attrgetter("parent", "layer")


#: a parent edge's transitions (ops compare by op and attributes) and its parent, the tie-break
_transitions_key: Callable[[tuple[str, tuple[Op, ...]]], tuple[Op, ...]] = operator.itemgetter(1)
_source_parent: Callable[[tuple[str, tuple[Op, ...]]], str] = operator.itemgetter(0)


@dataclass(frozen=True)
class Decision:
    """A merge that dropped information: at ``where`` (a node, or an edge ``u -> v``), for
    ``aspect``, ``kept`` (from ``winner``) was kept and ``dropped`` (value -> members) was not."""

    where: str
    aspect: str
    kept: str
    winner: str
    dropped: dict[str, list[str]]
    rule: str

    def line(self) -> str:
        lost = "; ".join(f"{value} ({', '.join(who)})" for value, who in self.dropped.items())
        return (f"merge {self.where}: kept {self.aspect} {self.kept} from {self.winner}, dropped {lost} "
                f"[{self.rule}]")

    def to_dict(self) -> dict:
        return {"where": self.where, "aspect": self.aspect, "kept": self.kept, "winner": self.winner,
                "dropped": self.dropped, "rule": self.rule}


def decisions(lg: LayerGraph) -> list[Decision]:
    """Every merged layer and collapsed edge of ``lg`` whose members disagree, per aspect."""
    out: list[Decision] = []
    for n in lg.layers():
        members = lg.block(n).members
        if len(members) > 1:
            out += _layer_decisions(n, members)
            out += _resolution_decision(n, members)
    for u, v in sorted(lg.edges(), key=lambda e: (lg.index(e[0]), lg.index(e[1]))):
        edge = lg.edge(u, v)
        if len({_transitions_key(s) for s in edge.sources}) > 1:
            out += _edge_decision(f"{u} -> {v}", edge)
    return out


def _rule(count: int, total: int, tied: bool) -> str:
    if tied:
        return f"tie at {count} of {total} members: alphabetically first parent"
    return f"majority: {count} of {total} members"


def _decide(where: str, aspect: str, items: Sequence[T], value: Callable[[T], str], winner: T,
            who: Callable[[T], str]) -> list[Decision]:
    values = Counter(value(i) for i in items)
    if len(values) < 2:
        return []
    kept = value(winner)
    counts = sorted(values.values(), reverse=True)
    tied = counts[0] == counts[1] and values[kept] == counts[0]
    dropped: dict[str, list[str]] = {}
    for i in items:
        if value(i) != kept:
            dropped.setdefault(value(i), []).append(who(i))
    return [Decision(where, aspect, kept, who(winner), dropped, _rule(values[kept], len(items), tied))]


_TAIL_ASPECTS = {"normalisation": lambda op: "norm" in op.op, "dropout": lambda op: "dropout" in op.op}


def _tail_aspect(op: Op) -> str:
    return next((a for a, test in _TAIL_ASPECTS.items() if test(op)), "activation")


def _layer_decisions(n: str, members: Sequence[Member]) -> list[Decision]:
    winner = winning_member(members)
    out: list[Decision] = []
    keys = sorted({k for m in members if m.op for k, _ in m.op.geometry()})
    for key in keys:
        def value(m: Member, key=key) -> str:
            return json.dumps(dict(m.op.geometry()).get(key, "-"), default=str)
        out += _decide(n, key, members, value, winner, str)
    out += _decide(n, "layer options", members, lambda m: (m.op.options_text() if m.op else "") or "none", winner, str)
    for aspect in (*_TAIL_ASPECTS, "activation"):
        def value(m: Member, aspect=aspect) -> str:
            ops = [op.describe() + (f" {op.options_text()}" if op.options else "")
                   for op in m.tail if _tail_aspect(op) == aspect]
            return " + ".join(ops) or "none"
        out += _decide(n, aspect, members, value, winner, str)
    return out


def _resolution_decision(n: str, members: Sequence[Member]) -> list[Decision]:
    if not any(len(m.in_size) == 2 for m in members):
        return []
    winner = resolution_member(members)
    return _decide(n, "input resolution", members, lambda m: "x".join(map(str, m.in_size)) or "flat", winner, str)


def resolution_member(members: Sequence[Member]) -> Member:
    """The member whose input resolution a merged layer takes (rule 3)."""
    return vote(members, _in_size, _member_name)[0]


def _edge_decision(where: str, edge: Edge) -> list[Decision]:
    def describe(s: tuple[str, tuple[Op, ...]]) -> str:
        return " + ".join(op.describe() for op in s[1]) or "none"

    ops = {op.op for _, t in edge.sources for op in t}
    aspect = "pooling" if ops & POOL_OPS else "unpooling" if ops & UNPOOL_OPS else "edge ops"
    winner = next(s for s in edge.sources if s[0] == edge.parent and s[1] == edge.transitions)
    return _decide(where, aspect, edge.sources, describe, winner, lambda s: s[0])

