"""Warm start: weights of a merged network from its trained parents (``init_from_parents``).

Rules (the merge must have been built with ``MergeOptions(init_from_parents=True)``):
  1. A merged layer's output channels are its members' channels side by side, in member order
     (widths summed); its weight is block-diagonal: member ``p.l`` writes only its own rows and
     reads only the input channels that hold its own parent's previous layer ``p.l'`` (or the
     image), with ``p.l``'s trained weight; every other entry is 0. Bias and batch-norm
     parameters are the members' concatenated.
  2. The layer feeding the output (the parents' last layers merged into one) averages: weight
     ``W_p / k`` in each member's input columns and the mean bias, so at step 0 its output -- the
     pre-activation, the logits -- equals the average of the parents' logits exactly (up to
     float rounding), whatever the batch.
  3. Refused (MergeError): merges that dropped information (a different stride, activation or
     pooling would change a member's function; see :mod:`spdnn.merge.decisions`), parents whose
     last layers did not merge, grouped or transposed convolutions, and a batch norm on the
     last layer.

Cost: a merged layer of k members with widths w_i reading predecessors of widths v_j has
``sum(w_i) * sum(v_j) * kh * kw`` weights, of which only ``sum(w_i * v_i) * kh * kw`` are
non-zero: the network is at least as large as the parents together (the zeros are trainable and
let the merged layers mix members from the first step on). ``budget`` is refused with it.
"""

from __future__ import annotations

import numpy as np

from spdnn.ir.graph import Graph
from spdnn.merge.layer_graph import INPUT, OUTPUT, LayerGraph, Member, MergeError

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
    out: Weights = {}
    for n in lg.layers():
        _layer(lg, graph, n, n in finals, where, parent_weights, out)
    return out


def _member_offsets(lg: LayerGraph, n: str) -> dict[tuple[str, str], int]:
    offsets, at = {}, 0
    for m in lg.block(n).members:
        offsets[(m.parent, m.layer)] = at
        at += m.width
    return offsets


def _columns(lg: LayerGraph, n: str, m: Member, where: dict, widths: dict[str, int]) -> tuple[int, int]:
    """(first, count) of the input channels of merged layer ``n`` that member ``m`` reads."""
    at = 0
    for p in lg.predecessors(n):
        if p == INPUT and not m.source:
            return at, lg.input_shape[0]
        if p != INPUT and where.get((m.parent, m.source)) == p:
            return at + _member_offsets(lg, p)[(m.parent, m.source)], lg.block(p).members[
                [(x.parent, x.layer) for x in lg.block(p).members].index((m.parent, m.source))].width
        at += lg.input_shape[0] if p == INPUT else widths[p]
    raise MergeError(f"member {m} does not read a predecessor of {n!r}")


def _layer(lg: LayerGraph, graph: Graph, n: str, final: bool, where, parents: dict[str, Weights], out: Weights):
    block = lg.block(n)
    node = graph.node(n)
    a = node.attrs
    if node.op not in ("conv2d", "linear") or getattr(a, "groups", 1) != 1:
        raise MergeError(f"warm start supports conv2d (groups 1) and linear layers, not {node.op} at {n!r}")
    widths = {x: (graph.node(x).attrs.out_channels if graph.node(x).op == "conv2d" else graph.node(x).attrs.out_features)
              for x in lg.layers()}
    in_width = graph.type_of(graph.inputs_of(n)[0]).shape[1]
    first = parents[block.members[0].parent][f"{block.members[0].layer}.weight"]
    weight = np.zeros((widths[n], int(in_width), *first.shape[2:]), first.dtype)
    bias = np.zeros(widths[n], first.dtype) if f"{n}.bias" in _names(graph, n) else None
    k = len(block.members)
    rows = _member_offsets(lg, n)
    for m in block.members:
        w = parents[m.parent][f"{m.layer}.weight"]
        col, count = _columns(lg, n, m, where, widths)
        if w.shape[1] != count:
            raise MergeError(f"{m} reads {w.shape[1]} channels, its input slice in {n!r} has {count}")
        r = slice(None) if final else slice(rows[(m.parent, m.layer)], rows[(m.parent, m.layer)] + m.width)
        weight[r, col:col + count] = w / k if final else w
        if bias is not None:
            b = parents[m.parent][f"{m.layer}.bias"]
            bias[r] += b / k if final else b
    out[f"{n}.weight"] = weight
    if bias is not None:
        out[f"{n}.bias"] = bias
    _tail(graph, n, block.members, final, parents, out)


def _names(graph: Graph, n: str) -> set[str]:
    a = graph.node(n).attrs
    return {f"{n}.weight"} | ({f"{n}.bias"} if getattr(a, "bias", True) else set())


def _tail(graph: Graph, n: str, members: list[Member], final: bool, parents, out: Weights) -> None:
    """Batch-norm parameters of the members side by side (other tail ops have none)."""
    x = n
    for i, op in enumerate(members[0].tail):
        x = next(u for u, _, _ in graph.users_of(x) if graph.node(u).op == op.op)
        if op.op != "batch_norm":
            continue
        if final:
            raise MergeError(f"warm start cannot average through the batch norm after the last layer {n!r}")
        for key in ("weight", "bias", "running_mean", "running_var"):
            out[f"{x}.{key}"] = np.concatenate([parents[m.parent][f"{m.tail_names[i]}.{key}"] for m in members])
        out[f"{x}.num_batches_tracked"] = np.asarray(0, np.int64)
