"""SPDNN step 5: turn a (contracted) layer graph back into an IR network (thesis §3.1 step 5).

Rules:
  1. Every block becomes its layer followed by its tail ops (S1 L1204-1206); the layer's width
     comes from ``widths`` (default: the first member's), its input size is inferred.
  2. The pooling/unpooling/flatten ops a parent had between two layers are re-inserted on that
     edge ("the pooling quality will be recalled from the original network", S3 L3433-3438).
  3. A block with several predecessors concatenates them on the channel axis (S2 L2050-2053); a
     fully connected block flattens 4-D inputs and concatenates features.
  4. Concatenated 4-D tensors of different resolutions are aligned first (App. B, L2585-2589).
     ``align="auto"`` (default) decides per incoming branch, "with the pooling qualities taken
     from their original networks" (L3446-3448): the target is the resolution the merged layer's
     members saw in their own parents (majority, ties to the alphabetically first parent; for
     the output head the parents' output resolution); a larger branch is pooled down with the
     pooling op of the parent it comes from (avg_pool2d if that parent averages, else
     max_pool2d), a smaller one is repeat-value unpooled up (L2617-2624). So one concatenation
     may pool some branches and unpool others. ``align="pool"`` / ``"unpool"`` override this:
     every branch is max-pooled down to the smallest / unpooled up to the largest resolution.
     Where resolutions do not differ by an integer factor, each branch is pooled / unpooled by the
     nearest integer factor and then every branch is centre-cropped to the smallest height and
     width among them (``crop``, U-Net's answer for 'valid'-padded branches a few pixels apart);
     a crop removing more than a quarter of a branch's height or width is refused.
  5. When several blocks feed the output (the parents' last layers did not merge), their final
     activation (sigmoid, softmax, tanh) moves into an output head: concatenation, then one
     layer with the parents' output width (a ``head_kernel`` x ``head_kernel`` 'same' conv, or a
     linear layer for vector outputs), then that activation (App. A Fig. 1; App. B "one channel
     convolutional layer").
  6. A residual add (join block, layer_graph rule 5) sums its incoming branches, aligned like a
     concatenation to the resolution its own parent had there, then applies its tail. Every
     block that feeds an add, directly or through other adds, gets one common width: the
     largest of their widths, or the input's channels when the input is a summand (an identity
     skip from the input). A join left with one incoming branch (its summands merged into one
     block) passes that branch on.
  7. A block's layer and tail nodes record the parent layers it stands for and its label in
     their meta (``meta.MERGED_FROM``, ``meta.SPDNN_LABEL``), and keep the layer options (frozen,
     init, spectral norm) of the op they are built from (the winning member's).
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from spdnn.ir import meta as M
from spdnn.ir.graph import Graph, Value
from spdnn.ir.types import TensorType
from spdnn.merge.decisions import resolution_member
from spdnn.merge.layer_graph import INPUT, JOIN, OUTPUT, Block, LayerGraph, MergeError, Op, format_label
from spdnn.ops import OpAttrs
from spdnn.passes.infer_shapes import infer_node

__all__ = ["to_network", "FINAL_ACTIVATIONS"]

FINAL_ACTIVATIONS = {"sigmoid", "softmax", "tanh"}
Align = Literal["auto", "pool", "unpool"]
ALIGNS = ("auto", "pool", "unpool")


class _Builder:
    """Adds IR nodes and infers their types as it goes; attributes given as a dict are
    validated once per distinct value (a merged network repeats a few: concat on axis 1,
    pooling by 2, ...)."""

    def __init__(self, name: str):
        self.g = Graph(name)
        self._attrs: dict[tuple[str, str], OpAttrs] = {}

    def add(self, base: str, op: str, attrs: Any, inputs: list[Value]) -> Value:
        name = self.g.unique_name(base)
        key = (op, repr(attrs)) if isinstance(attrs, dict) else None
        node = self.g.add_node(name, op, self._attrs.get(key, attrs) if key else attrs, inputs)
        if key:
            self._attrs[key] = node.attrs
        infer_node(self.g, name)
        return Value(name, 0)

    def type(self, v: Value) -> TensorType:
        return self.g.type_of(v)


def to_network(lg: LayerGraph, widths: dict[str, int] | None = None, align: Align = "auto",
               head_kernel: int = 3) -> Graph:
    """Build the IR graph of ``lg``; raise MergeError when shapes cannot be reconciled."""
    if align not in ALIGNS:
        raise MergeError(f"unknown alignment {align!r}; choose one of {', '.join(ALIGNS)}")
    widths = tied_widths(lg, widths or {})
    b = _Builder(lg.name)
    values: dict[str, Value] = {INPUT: b.add("input", "input", {"shape": list(lg.input_shape)}, [])}
    after_edge: dict[tuple, Value] = {}
    out_preds = lg.predecessors(OUTPUT)
    head_ops = _head_ops(lg, out_preds) if len(out_preds) > 1 else ()
    for n in lg.layers():
        block = lg.block(n)
        preds = lg.predecessors(n)
        ins = [_Branch(_through_edge(b, lg, p, n, values, after_edge), _pool_kind(lg, p, n)) for p in preds]
        target = resolution_member(block.members).in_size if len(preds) > 1 else ()
        if block.kind == JOIN:
            x = _sum(b, n, ins, align, target)
        else:
            x = _join(b, n, ins, block.kind == "F", align, target)
            x = b.add(n, block.layer.op, _layer_attrs(block, widths.get(n)), [x])
            _keep_options(b.g, x.node, block.layer)
        made = [x.node]
        tail = block.tail[: len(block.tail) - len(head_ops)] if n in out_preds and head_ops else block.tail
        for op in tail:
            x = b.add(f"{n}_{op.op}", op.op, op.attrs, [x])
            _keep_options(b.g, x.node, op)
            made.append(x.node)
        merged_from, label = [str(m) for m in block.members], format_label(block.label)
        for name in made:  # provenance (rule 6)
            b.g.meta_of(name).update({M.MERGED_FROM: list(merged_from), M.SPDNN_LABEL: label})
        values[n] = x
    finals = [_Branch(_through_edge(b, lg, p, OUTPUT, values, after_edge), _pool_kind(lg, p, OUTPUT))
              for p in out_preds]
    if len(finals) == 1:
        y = finals[0].value
    else:
        y = _head(b, lg, finals, head_ops, align, head_kernel)
    got = b.type(y).sample_shape
    if got != tuple(lg.output_shape):
        raise MergeError(f"the merged network outputs {got}, the parents {tuple(lg.output_shape)}")
    b.add("output", "output", {}, [y])
    b.g.verify()
    return b.g


def _keep_options(g: Graph, name: str, op: Op) -> None:
    if op.options is not None:
        g.meta_of(name)[M.LAYER_OPTIONS] = op.options


def tied_widths(lg: LayerGraph, widths: dict[str, int]) -> dict[str, int]:
    """``widths`` with every block feeding a residual add, directly or through other adds, set
    to one common width (rule 6)."""
    joins = [n for n in lg.layers() if lg.block(n).kind == JOIN]
    if not joins:
        return widths
    group_of: dict[str, str] = {}  # union-find over adds and the blocks they sum

    def find(n: str) -> str:
        while group_of.get(n, n) != n:
            n = group_of[n]
        return n

    for j in joins:
        for p in lg.predecessors(j, ordered=False):
            group_of[find(p)] = find(j)
    groups: dict[str, list[str]] = {}
    for n in group_of:
        groups.setdefault(find(n), []).append(n)
    out = dict(widths)
    for members in groups.values():
        summands = [n for n in members if n != INPUT and lg.block(n).kind != JOIN]
        if INPUT in members:
            common = int(lg.input_shape[0])
        else:
            common = max(out.get(n, lg.block(n).members[0].width) for n in summands)
        out.update({n: common for n in summands})
    return out


def _sum(b: _Builder, base: str, ins: list[_Branch], align: Align, target: tuple[int, ...]) -> Value:
    if len(ins) == 1:
        return ins[0].value
    ranks = {b.type(v.value).rank for v in ins}
    values = _align(b, base, ins, align, target if len(target) == 2 else ()) if ranks == {4} else \
        [v.value for v in ins]
    return b.add(base, "add", {}, values)


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


class _Branch(NamedTuple):
    """A concatenation input and the pooling op of the parent it comes from."""

    value: Value
    pool_kind: str


def _pool_kind(lg: LayerGraph, u: str, v: str) -> str:
    return lg.pool_kinds.get(lg.edge(u, v).parent, "max_pool2d")


def _align(b: _Builder, base: str, ins: list[_Branch], align: Align, target: tuple[int, ...]) -> list[Value]:
    sizes = [tuple(int(d) for d in b.type(v.value).shape[2:]) for v in ins]
    if align == "unpool":
        target = max(sizes)
    elif align == "pool" or not target:
        target = min(sizes)
    values = [_resample(b, base, branch, size, tuple(target)) for branch, size in zip(ins, sizes, strict=True)]
    return _crop_to_smallest(b, base, values)


def _nearest_factor(size: tuple[int, ...], target: tuple[int, ...]) -> tuple[int, int, bool]:
    """(factor along height, along width, down?) of the integer rescaling that brings ``size``
    nearest to ``target`` (rule 4); factors 1 when no rescaling brings it nearer."""
    down = size[0] * size[1] >= target[0] * target[1]
    big, small = (size, target) if down else (target, size)
    return max(1, round(big[0] / small[0])), max(1, round(big[1] / small[1])), down


def _resample(b: _Builder, base: str, branch: _Branch, size: tuple[int, ...], target: tuple[int, ...]) -> Value:
    """``branch`` brought from ``size`` to about ``target`` by pooling or repeat-unpooling by
    the nearest integer factor (exactly ``target`` when the sizes differ by an integer factor)."""
    fh, fw, down = _nearest_factor(size, target)
    if (fh, fw) == (1, 1):
        return branch.value
    if down:
        return b.add(f"{base}_align", branch.pool_kind, {"kernel_size": [fh, fw]}, [branch.value])
    return b.add(f"{base}_align", "repeat_unpool", {"factor": [fh, fw]}, [branch.value])


def _crop_to_smallest(b: _Builder, base: str, values: list[Value]) -> list[Value]:
    """Centre-crop every branch to the smallest height and width among them (U-Net's "copy and
    crop" of 'valid'-padded branches). A crop may remove at most a quarter of a branch's height
    or width (U-Net's crops remove 12-24%); beyond that the branches are not "a few pixels"
    apart and the merge is refused."""
    sizes = [tuple(int(d) for d in b.type(v).shape[2:]) for v in values]
    smallest = (min(s[0] for s in sizes), min(s[1] for s in sizes))
    out = []
    for v, size in zip(values, sizes, strict=True):
        if size != smallest:
            if any(4 * (s - t) > s for s, t in zip(size, smallest, strict=True)):
                shown = ", ".join(f"{h}x{w}" for h, w in sizes)
                raise MergeError(f"cannot align the branches concatenated at {base!r} ({shown}): after pooling or "
                                 "unpooling by integer factors they still differ by more than a quarter of their "
                                 "size, too much for a centre crop")
            v = b.add(f"{base}_crop", "crop", {"size": list(smallest)}, [v])
        out.append(v)
    return out


def _join(b: _Builder, base: str, ins: list[_Branch], flat: bool, align: Align,
          target: tuple[int, ...] = ()) -> Value:
    if len(ins) == 1:
        return ins[0].value
    ranks = {b.type(v.value).rank for v in ins}
    if flat:
        values = [v.value if b.type(v.value).rank == 2 else b.add(f"{base}_flatten", "flatten", {}, [v.value])
                  for v in ins]
    elif ranks != {4}:
        raise MergeError(f"cannot concatenate inputs of ranks {sorted(ranks)} before conv block {base!r}")
    else:
        values = _align(b, base, ins, align, target if len(target) == 2 else ())
    return b.add(f"{base}_concat", "concat", {"axis": 1}, values)


def _head_ops(lg: LayerGraph, preds: list[str]) -> tuple[Op, ...]:
    tail = lg.block(preds[0]).tail
    if tail and tail[-1].op in FINAL_ACTIVATIONS:
        if all(lg.block(p).tail[-1:] == tail[-1:] for p in preds):
            return tail[-1:]
    return ()


def _head(b: _Builder, lg: LayerGraph, finals: list[_Branch], head_ops, align: Align, kernel: int) -> Value:
    shape = tuple(lg.output_shape)
    x = _join(b, "head", finals, len(shape) == 1, align, shape[1:])
    if len(shape) == 1:
        x = b.add("head", "linear", {"out_features": shape[0]}, [x])
    else:
        x = b.add("head", "conv2d", {"out_channels": shape[0], "kernel_size": kernel, "padding": "same"}, [x])
    for op in head_ops:
        x = b.add(f"head_{op.op}", op.op, op.attrs, [x])
    return x
