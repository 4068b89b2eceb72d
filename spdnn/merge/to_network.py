"""SPDNN step 5: turn a (contracted) layer graph back into an IR network (thesis §3.1 step 5).

Rules:
  1. Every block becomes its layer followed by its tail ops (S1 L1204-1206); the layer's width
     comes from ``widths`` (default: the first member's), its input size is inferred.
  2. The pooling/unpooling/flatten ops a parent had between two layers are re-inserted on that
     edge ("the pooling quality will be recalled from the original network", S3 L3433-3438).
  3. A block with several predecessors concatenates them on the channel axis (S2 L2050-2053); a
     fully connected block flattens 4-D inputs and concatenates features.
  4. Concatenated 4-D tensors of different resolutions are aligned first (App. B, L2585-2589):
     ``align="pool"`` max-pools the larger ones down to the smallest, ``align="unpool"``
     repeat-value unpools the smaller ones up to the largest (value repeating, L2617-2624).
     Resolutions must differ by an integer factor.
  5. When several blocks feed the output (the parents' last layers did not merge), their final
     activation (sigmoid, softmax, tanh) moves into an output head: concatenation, then one
     layer with the parents' output width (a ``head_kernel`` x ``head_kernel`` 'same' conv, or a
     linear layer for vector outputs), then that activation (App. A Fig. 1; App. B "one channel
     convolutional layer").
  6. A block's layer and tail nodes record the parent layers it stands for and its label in
     their meta (``meta.MERGED_FROM``, ``meta.SPDNN_LABEL``).
"""

from __future__ import annotations

from typing import Any, Literal

from spdnn.ir import meta as M
from spdnn.ir.graph import Graph, Value
from spdnn.ir.types import TensorType
from spdnn.merge.layer_graph import INPUT, OUTPUT, Block, LayerGraph, MergeError, Op, format_label
from spdnn.passes.infer_shapes import infer_node

__all__ = ["to_network", "FINAL_ACTIVATIONS"]

FINAL_ACTIVATIONS = {"sigmoid", "softmax", "tanh"}
Align = Literal["pool", "unpool"]


class _Builder:
    """Adds IR nodes and infers their types as it goes."""

    def __init__(self, name: str):
        self.g = Graph(name)

    def add(self, base: str, op: str, attrs: Any, inputs: list[Value]) -> Value:
        name = self.g.unique_name(base)
        self.g.add_node(name, op, attrs, inputs)
        infer_node(self.g, name)
        return Value(name, 0)

    def type(self, v: Value) -> TensorType:
        return self.g.type_of(v)


def to_network(lg: LayerGraph, widths: dict[str, int] | None = None, align: Align = "pool",
               head_kernel: int = 3) -> Graph:
    """Build the IR graph of ``lg``; raise MergeError when shapes cannot be reconciled."""
    widths = widths or {}
    b = _Builder(lg.name)
    values: dict[str, Value] = {INPUT: b.add("input", "input", {"shape": list(lg.input_shape)}, [])}
    after_edge: dict[tuple, Value] = {}
    out_preds = lg.predecessors(OUTPUT)
    head_ops = _head_ops(lg, out_preds) if len(out_preds) > 1 else ()
    for n in lg.layers():
        block = lg.block(n)
        ins = [_through_edge(b, lg, p, n, values, after_edge) for p in lg.predecessors(n)]
        x = _join(b, n, ins, block.kind == "F", align)
        attrs = _layer_attrs(block, widths.get(n))
        x = b.add(n, block.layer.op, attrs, [x])
        made = [x.node]
        tail = block.tail[: len(block.tail) - len(head_ops)] if n in out_preds and head_ops else block.tail
        for op in tail:
            x = b.add(f"{n}_{op.op}", op.op, op.attrs, [x])
            made.append(x.node)
        for name in made:  # provenance (rule 6)
            b.g.meta_of(name).update({M.MERGED_FROM: [str(m) for m in block.members],
                                      M.SPDNN_LABEL: format_label(block.label)})
        values[n] = x
    finals = [_through_edge(b, lg, p, OUTPUT, values, after_edge) for p in out_preds]
    if len(finals) == 1:
        y = finals[0]
    else:
        y = _head(b, lg, finals, head_ops, align, head_kernel)
    got = b.type(y).sample_shape
    if got != tuple(lg.output_shape):
        raise MergeError(f"the merged network outputs {got}, the parents {tuple(lg.output_shape)}")
    b.add("output", "output", {}, [y])
    b.g.verify()
    return b.g


def _layer_attrs(block: Block, width: int | None) -> dict[str, Any]:
    attrs = block.layer.attrs.model_dump()
    for key in ("in_channels", "in_features"):
        attrs.pop(key, None)
    if width is not None:
        attrs["out_features" if block.kind == "F" else "out_channels"] = width
    return attrs


def _through_edge(b: _Builder, lg: LayerGraph, u: str, v: str, values, cache) -> Value:
    transitions = lg.edge(u, v).transitions
    key = (u, tuple(op.signature() for op in transitions))
    if key not in cache:
        x = values[u]
        for op in transitions:
            x = b.add(f"{u}_{op.op}", op.op, _transition_attrs(op), [x])
        cache[key] = x
    return cache[key]


def _transition_attrs(op: Op) -> Any:
    if op.op == "max_pool2d" and op.attrs.return_indices:
        raise MergeError("max_unpool2d needs the indices of its own max_pool2d, which a merged network no "
                         "longer has (S3 L2617-2619); use repeat_unpool in the parents")
    return op.attrs


def _align(b: _Builder, base: str, ins: list[Value], align: Align) -> list[Value]:
    sizes = [tuple(int(d) for d in b.type(v).shape[2:]) for v in ins]
    target = min(sizes) if align == "pool" else max(sizes)
    out = []
    for v, size in zip(ins, sizes, strict=True):
        if size == target:
            out.append(v)
            continue
        big, small = (size, target) if align == "pool" else (target, size)
        fh, fw = big[0] // small[0], big[1] // small[1]
        if (small[0] * fh, small[1] * fw) != big:
            raise MergeError(f"cannot align {size[0]}x{size[1]} with {target[0]}x{target[1]} at {base!r}: "
                             "resolutions must differ by an integer factor")
        if align == "pool":
            out.append(b.add(f"{base}_align", "max_pool2d", {"kernel_size": [fh, fw]}, [v]))
        else:
            out.append(b.add(f"{base}_align", "repeat_unpool", {"factor": [fh, fw]}, [v]))
    return out


def _join(b: _Builder, base: str, ins: list[Value], flat: bool, align: Align) -> Value:
    if len(ins) == 1:
        return ins[0]
    ranks = {b.type(v).rank for v in ins}
    if flat:
        ins = [v if b.type(v).rank == 2 else b.add(f"{base}_flatten", "flatten", {}, [v]) for v in ins]
    elif ranks != {4}:
        raise MergeError(f"cannot concatenate inputs of ranks {sorted(ranks)} before conv block {base!r}")
    else:
        ins = _align(b, base, ins, align)
    return b.add(f"{base}_concat", "concat", {"axis": 1}, ins)


def _head_ops(lg: LayerGraph, preds: list[str]) -> tuple[Op, ...]:
    tail = lg.block(preds[0]).tail
    if tail and tail[-1].op in FINAL_ACTIVATIONS:
        if all(lg.block(p).tail[-1:] == tail[-1:] for p in preds):
            return tail[-1:]
    return ()


def _head(b: _Builder, lg: LayerGraph, finals: list[Value], head_ops, align: Align, kernel: int) -> Value:
    shape = tuple(lg.output_shape)
    x = _join(b, "head", finals, len(shape) == 1, align)
    if len(shape) == 1:
        x = b.add("head", "linear", {"out_features": shape[0]}, [x])
    else:
        x = b.add("head", "conv2d", {"out_channels": shape[0], "kernel_size": kernel, "padding": "same"}, [x])
    for op in head_ops:
        x = b.add(f"head_{op.op}", op.op, op.attrs, [x])
    return x
