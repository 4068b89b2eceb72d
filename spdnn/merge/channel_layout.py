"""Where each parent's channels sit in a warm-started merged network (``init_from_parents``).

Rules (:mod:`spdnn.merge.warm_start` fills the weights by them, :func:`summed_widths` sizes the
layers by them):
  1. A merged layer holds its members' channels side by side, in member order; its width is
     their sum. Two members of one parent in one block are refused (their channels would have
     to be told apart by more than the parent).
  2. Blocks summed by residual adds (directly or through other adds: one "add group",
     :func:`spdnn.merge.to_network.tied_widths`) must hold each parent's channels at the same
     offset, since an add sums channel i with channel i. Every block of a group, and its adds,
     therefore share one layout: the parents present in the group's layers, in name order,
     each with its width; the group's width is their sum. A one-parent layer summed with a
     merged one is widened to that width with zero rows (a cost: the residual/concat pair of
     tests/test_merge_dag.py has 4,598 parameters warm-started against 2,695 for the parents). An add reading the input (an identity
     skip from the image) is refused: the image is every parent's, at offset 0.
  3. The layers feeding the output keep the output width; every member writes all of it (the
     warm start averages there).
  4. The input is every parent's: offset 0, all its channels.
"""

from __future__ import annotations

from spdnn.merge.layer_graph import INPUT, JOIN, OUTPUT, LayerGraph, MergeError

__all__ = ["Layout", "channel_layout", "summed_widths"]

#: block -> parent -> (first channel, number of channels)
Layout = dict[str, dict[str, tuple[int, int]]]


def channel_layout(lg: LayerGraph) -> Layout:
    """The layout of every block (input included) by rules 1-4."""
    finals = set(lg.predecessors(OUTPUT))
    layout: Layout = {INPUT: {p: (0, int(lg.input_shape[0])) for p in lg.parents}}
    for n in lg.layers():
        members = lg.block(n).members
        parents = [m.parent for m in members]
        if len(set(parents)) < len(parents):
            raise MergeError(f"warm start: block {n!r} merges two layers of one parent ({', '.join(map(str, members))})")
        if n in finals:
            if lg.block(n).kind == JOIN:
                raise MergeError(f"warm start: the output is fed by the add {n!r}; it needs a layer to average")
            layout[n] = {m.parent: (0, m.width) for m in members}
        else:
            layout[n] = _side_by_side([(m.parent, m.width) for m in members])
    for group in _add_groups(lg):
        if INPUT in group:
            adds = sorted(n for n in group if n != INPUT and lg.block(n).kind == JOIN)
            raise MergeError(f"warm start: the add {adds[0]!r} sums the input (an identity skip from the image), "
                             "whose channels belong to every parent; a block-diagonal start is not defined for it")
        widths: dict[str, int] = {}
        for n in sorted(group):
            if lg.block(n).kind == JOIN:
                continue
            for m in lg.block(n).members:
                if widths.setdefault(m.parent, m.width) != m.width:
                    raise MergeError(f"warm start: parent {m.parent!r} sums {widths[m.parent]} and {m.width} "
                                     f"channels at the adds around {n!r}")
        if group & finals:
            raise MergeError(f"warm start: {sorted(group & finals)[0]!r} feeds both the output and an add")
        shared = _side_by_side(sorted(widths.items()))
        for n in group:
            layout[n] = dict(shared)
    return layout


def summed_widths(lg: LayerGraph) -> dict[str, int]:
    """Warm-start widths: a block's width is the end of its last parent slice (rules 1-3)."""
    layout = channel_layout(lg)
    return {n: max(o + w for o, w in layout[n].values()) for n in lg.layers()}


def _side_by_side(widths: list[tuple[str, int]]) -> dict[str, tuple[int, int]]:
    out, at = {}, 0
    for parent, w in widths:
        out[parent] = (at, w)
        at += w
    return out


def _add_groups(lg: LayerGraph) -> list[set[str]]:
    """Sets of blocks tied by residual adds (the adds included)."""
    group_of: dict[str, str] = {}

    def find(n: str) -> str:
        while group_of.get(n, n) != n:
            n = group_of[n]
        return n

    for j in lg.layers():
        if lg.block(j).kind == JOIN:
            group_of.setdefault(j, j)
            for p in lg.predecessors(j, ordered=False):
                group_of[find(p)] = find(j)
    groups: dict[str, set[str]] = {}
    for n in group_of:
        groups.setdefault(find(n), set()).add(n)
    return list(groups.values())
