"""Warm start: weights of a merged network from its trained parents (``init_from_parents``).

Rules (the merge must have been built with ``MergeOptions(init_from_parents=True)``):
  1. Each parent's channels sit in every merged block at the offsets of
     :mod:`spdnn.merge.channel_layout` (members side by side; blocks summed by a residual add
     share one layout so that the add sums each parent's channels with its own). A merged
     layer's weight is block-diagonal: member ``p.l`` writes only parent ``p``'s rows and reads
     only parent ``p``'s channels of the blocks its own inputs ``p.l'`` became (or the image),
     in the order of ``p``'s own concatenation, with ``p.l``'s trained weight; every other
     entry is 0. A fully connected layer reading a flattened map reads ``p``'s channels times
     the map size (channel-major flattening keeps them contiguous). Bias and batch-norm
     parameters go to the member's rows; unused batch-norm rows are the identity.
  2. The layer feeding the output (the parents' last layers merged into one) averages: weight
     ``W_p / k`` in each member's input columns and the mean bias, so at step 0 its output -- the
     pre-activation, the logits -- equals the average of the parents' logits exactly (up to
     float rounding), whatever the batch. Residual adds need no weights: each parent's channels
     are summed with its own.
  3. Refused (MergeError): merges that dropped information (a different stride, activation or
     pooling would change a member's function; see :mod:`spdnn.merge.decisions`), parents whose
     last layers did not merge, grouped or transposed convolutions, a batch norm on the last
     layer or after an add, and the layouts :mod:`spdnn.merge.channel_layout` refuses.

Cost: a merged layer of k members with widths w_i reading predecessors of widths v_j has
``sum(w_i) * sum(v_j) * kh * kw`` weights, of which only ``sum(w_i * v_i) * kh * kw`` are
non-zero: the network is at least as large as the parents together (the zeros are trainable and
let the merged layers mix members from the first step on). ``budget`` is refused with it.
"""

from __future__ import annotations

import numpy as np

from spdnn.ir.graph import Graph
from spdnn.merge.channel_layout import Layout, channel_layout
from spdnn.merge.layer_graph import INPUT, JOIN, OUTPUT, LayerGraph, Member, MergeError

__all__ = ["warm_start_weights"]

Weights = dict[str, np.ndarray]


def warm_start_weights(result, parent_weights: dict[str, Weights]) -> Weights:
    """State dict (numpy arrays keyed like the torch module's) of ``result.graph`` built from
    ``parent_weights`` (parent name -> its state dict)."""
    if not result.options.init_from_parents:
        raise MergeError("warm start needs a merge built with init_from_parents=True (widths summed)")
    if dropped := result.decisions():
        raise MergeError("warm start cannot reproduce the parents: the merge dropped information "
                         f"({len(dropped)}): {dropped[0].line()}")
    lg, graph = result.final, result.graph
    finals = lg.predecessors(OUTPUT)
    if len(finals) != 1:
        raise MergeError(f"warm start needs the parents' last layers to merge into one; {len(finals)} feed the output")
    missing = [p for p in lg.parents if p not in parent_weights]
    if missing:
        raise MergeError(f"no weights for parent(s) {', '.join(missing)}")
    where = {(m.parent, m.layer): n for n in lg.layers() for m in lg.block(n).members}
    layout = channel_layout(lg)
    out: Weights = {}
    for n in lg.layers():
        if lg.block(n).kind == JOIN:
            if any(op.op == "batch_norm" for op in lg.block(n).tail):
                raise MergeError(f"warm start does not take a batch norm after the add {n!r}")
            continue
        _layer(lg, graph, n, n in finals, where, layout, parent_weights, out)
    return out


def _branches(lg: LayerGraph, graph: Graph, n: str, layout: Layout) -> dict[str, tuple[int, int]]:
    """Per predecessor of merged layer ``n``: (first input unit, units per channel) in ``n``'s
    input (a unit is a channel, or a feature after flattening)."""
    x = graph.inputs_of(n)[0]
    preds = lg.predecessors(n)
    values = graph.inputs_of(x.node) if len(preds) > 1 and graph.node(x.node).op == "concat" else [x]
    out, at = {}, 0
    for p, v in zip(preds, values, strict=True):
        shape = graph.type_of(v).sample_shape
        channels = max(o + w for o, w in layout[p].values())
        size = int(np.prod(shape)) if len(shape) == 1 else int(shape[0])  # features, or channels
        out[p] = (at, size // channels)
        at += size
    return out


def _width(graph: Graph, n: str) -> int:
    a = graph.node(n).attrs
    return int(a.out_channels if graph.node(n).op == "conv2d" else a.out_features)


def _columns(lg: LayerGraph, graph: Graph, n: str, m: Member, where: dict, layout: Layout) -> list[tuple[int, int]]:
    """(first, count) pieces of ``n``'s input that member ``m`` reads, in its own input order."""
    branches = _branches(lg, graph, n, layout)
    pieces = []
    for source in m.sources:
        p = INPUT if not source else where.get((m.parent, source))
        if p not in branches:
            raise MergeError(f"member {m} does not read a predecessor of {n!r}")
        at, unit = branches[p]
        offset, width = layout[p][m.parent]
        pieces.append((at + offset * unit, width * unit))
    return pieces


def _layer(lg: LayerGraph, graph: Graph, n: str, final: bool, where, layout: Layout,
           parents: dict[str, Weights], out: Weights):
    block = lg.block(n)
    node = graph.node(n)
    a = node.attrs
    if node.op not in ("conv2d", "linear") or getattr(a, "groups", 1) != 1:
        raise MergeError(f"warm start supports conv2d (groups 1) and linear layers, not {node.op} at {n!r}")
    in_width = graph.type_of(graph.inputs_of(n)[0]).shape[1]
    first = parents[block.members[0].parent][f"{block.members[0].layer}.weight"]
    weight = np.zeros((_width(graph, n), int(in_width), *first.shape[2:]), first.dtype)
    bias = np.zeros(_width(graph, n), first.dtype) if f"{n}.bias" in _names(graph, n) else None
    k = len(block.members)
    for m in block.members:
        w = parents[m.parent][f"{m.layer}.weight"]
        pieces = _columns(lg, graph, n, m, where, layout)
        if w.shape[1] != sum(c for _, c in pieces):
            raise MergeError(f"{m} reads {w.shape[1]} inputs, its slices of {n!r}'s input hold "
                             f"{sum(c for _, c in pieces)}")
        offset, width = layout[n][m.parent]
        r = slice(None) if final else slice(offset, offset + width)
        read = 0
        for col, count in pieces:
            weight[r, col:col + count] = w[:, read:read + count] / k if final else w[:, read:read + count]
            read += count
        if bias is not None:
            b = parents[m.parent][f"{m.layer}.bias"]
            bias[r] += b / k if final else b
    out[f"{n}.weight"] = weight
    if bias is not None:
        out[f"{n}.bias"] = bias
    _tail(graph, n, block.members, final, layout[n], parents, out)


def _names(graph: Graph, n: str) -> set[str]:
    a = graph.node(n).attrs
    return {f"{n}.weight"} | ({f"{n}.bias"} if getattr(a, "bias", True) else set())


_BN_IDENTITY = {"weight": 1.0, "bias": 0.0, "running_mean": 0.0, "running_var": 1.0}


def _tail(graph: Graph, n: str, members: list[Member], final: bool, rows: dict[str, tuple[int, int]], parents,
          out: Weights) -> None:
    """Batch-norm parameters of each member in its own rows (other tail ops have none)."""
    x = n
    width = _width(graph, n)
    for i, op in enumerate(members[0].tail):
        x = next(u for u, _, _ in graph.users_of(x) if graph.node(u).op == op.op)
        if op.op != "batch_norm":
            continue
        if final:
            raise MergeError(f"warm start cannot average through the batch norm after the last layer {n!r}")
        for key, fill in _BN_IDENTITY.items():
            first = parents[members[0].parent][f"{members[0].tail_names[i]}.{key}"]
            vec = np.full(width, fill, first.dtype)
            for m in members:
                offset, w = rows[m.parent]
                vec[offset:offset + w] = parents[m.parent][f"{m.tail_names[i]}.{key}"]
            out[f"{x}.{key}"] = vec
        out[f"{x}.num_batches_tracked"] = np.asarray(0, np.int64)
