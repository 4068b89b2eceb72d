"""``spdnn-merge-head``: App. B's post-merge head -- both concatenation forms of the parallel
branches, then a head network given by a spec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from spdnn.errors import PassError
from spdnn.ir import meta as M
from spdnn.ir.graph import Graph, Value
from spdnn.ops.base import suggest
from spdnn.passes.base import PassResult
from spdnn.passes.graft import SpecPath, load_network
from spdnn.passes.infer_shapes import infer_node
from spdnn.passes.options import OneOrMore
from spdnn.passes.spdnn.base import ModulePass
from spdnn.passes.spdnn.module import MergeModule

__all__ = ["SpdnnMergeHeadPass", "add_merge_head", "FORMS"]

#: the head spec's inputs: the pooled form (thesis node N) and the unpooled form (node O)
FORMS = ("pooled", "unpooled")


@dataclass(frozen=True)
class SpdnnMergeHeadPass(ModulePass):
    """After the merge, concatenate the parallel branches in two forms and finish with a head network.

    Thesis App. B (seed 003): "the outputs of these four subnetworks are concatenated in two
    different forms; one is to pool the larger images to be the same size as the smallest image
    ..., and the other one is to unpool the smaller images ... to be the same size as the
    largest image" (L2585-2589); "in nodes N and O the outputs of nodes J, K, L, and M are
    concatenated with the pooling qualities taken from their original networks" (L3446-3448);
    then an FCN and an autoencoder with a fully connected bottleneck and value-repeating
    unpooling, "again merged ... after applying a one channel convolutional layer"
    (L2591-2604, L2616-2624). Rules:

      1. The branches are the blocks named in ``branches`` (block ids of the final layer graph,
         as the merge report lists them), or by default the producers of the first fully
         connected block (topological order) that reads two or more blocks -- the thesis's
         node N, which concatenates J, K, L and M.
      2. Form ``pooled``: every branch pooled down to the smallest branch resolution with the
         pooling op of its own parent (avg_pool2d if that parent averages, else max_pool2d),
         then concatenated on channels. Form ``unpooled``: every branch repeat-value unpooled up
         to the largest resolution, then concatenated. Resolutions must differ by integer
         factors.
      3. The ``head`` spec has exactly the inputs ``pooled`` and ``unpooled`` and one output.
         Each input's declared height and width must equal its form's; its channels are the
         merge's (the head's first layers take the width the merge gives them). The head's
         layers are copied in, named ``<prefix><layer>``, and its output becomes the merged
         network's output, whose shape must stay the parents'.
      4. Every merged block that is neither a branch nor before one is removed (the parents' own
         right-hand sides, and the merge's output head, give way to the spec's head); the
         report lists them.
      5. With a parameter budget (``spdnn-to-network``'s), the widths are fitted again with the
         head in place (:func:`spdnn.merge.fit_budget`); the head's own layers keep the widths
         its spec gives.

    Reads ``layer_graph``, ``network``, ``build``, ``budget`` and ``widths_before_budget``
    (written by ``spdnn-to-network``); writes ``network``, ``widths`` and ``head`` (the spec,
    the branches and the removed nodes, for the merge report).
    """

    name: ClassVar[str] = "spdnn-merge-head"

    head: SpecPath
    """Path of the head network's YAML spec (inputs 'pooled' and 'unpooled', one output)."""
    branches: OneOrMore | None = None
    """Block ids of the branches to concatenate; default: the producers of the first FC block reading several."""
    prefix: str = ""
    """Prefix of the head's layer names in the merged network."""

    def call(self, module: MergeModule) -> PassResult:
        from spdnn.merge.layer_graph import MergeError
        from spdnn.merge.widths import fit_budget
        from spdnn.summary import totals

        if "build" not in module.analyses:
            raise MergeError("spdnn-merge-head runs after spdnn-to-network: no merged network yet")
        lg = module.layer_graph
        head = load_network(self.head)
        branches = list(self.branches) if self.branches else default_branches(lg)
        for b in branches:
            _check_branch(lg, b)
        live, removed = _live_part(lg, branches)
        build = module.analyses["build"]

        def with_head(widths: dict[str, int]) -> Graph:
            graph = build(live, {n: w for n, w in widths.items() if n in live})
            add_merge_head(graph, live, head, branches, self.prefix, self.head)
            return graph

        widths = module.analyses["widths"]
        budget = module.analyses.get("budget")
        if budget is not None:
            start = {n: w for n, w in module.analyses["widths_before_budget"].items() if n in live}
            widths, _ = fit_budget(lg, start, budget, lambda w: totals(with_head(w))[0])
        module.analyses["widths"] = {n: w for n, w in widths.items() if n in live}
        module.analyses["network"] = with_head(widths)
        module.analyses["head"] = {"spec": self.head, "description": head.meta.get("description", ""),
                                   "branches": branches, "removed": removed}
        return PassResult(module, True)


def default_branches(lg: Any) -> list[str]:
    """Rule 1's default: the producers of the first FC block that reads two or more blocks."""
    from spdnn.merge.layer_graph import INPUT, MergeError

    for n in lg.layers():
        preds = [p for p in lg.predecessors(n) if p != INPUT]
        if lg.block(n).kind == "F" and len(preds) >= 2:
            return preds
    raise MergeError("spdnn-merge-head: no fully connected block of the merge reads several blocks (the thesis's "
                     "node N); name the branches to concatenate with the option branches=[...]")


def _live_part(lg: Any, branches: list[str]) -> tuple[Any, list[str]]:
    """(a copy of ``lg`` keeping only the branches and the blocks before them, the branches
    feeding the output; the ids of the blocks left out) -- rule 4."""
    from spdnn.merge.layer_graph import INPUT, OUTPUT, Block, LayerGraph

    keep, stack = {INPUT}, list(branches)
    while stack:
        n = stack.pop()
        if n not in keep:
            keep.add(n)
            stack.extend(lg.predecessors(n, ordered=False))
    live = LayerGraph(lg.name)
    live.copy_meta(lg)
    for n in sorted(keep, key=lg.index):
        b = lg.block(n)
        live.add(n, Block(b.kind, b.layer, b.tail, b.pooling, list(b.members), b.label))
    for u, v in lg.edges():
        if u in keep and v in keep:
            live.connect(u, v, lg.edge(u, v))
    live.add(OUTPUT, Block(OUTPUT))
    for b in branches:
        live.connect(b, OUTPUT)
    return live, [n for n in lg.layers() if n not in keep]


def _check_branch(lg: Any, block: str) -> None:
    from spdnn.merge.layer_graph import MergeError

    if block not in lg or block in ("input", "output"):
        hint = suggest(block, lg.layers())
        raise MergeError(f"spdnn-merge-head: no merged block {block!r}" + (f" (did you mean {hint[0]!r}?)" if hint
                                                                           else ""))
    if lg.block(block).kind not in ("C", "T"):
        raise MergeError(f"spdnn-merge-head: branch {block!r} is not a conv block")


def add_merge_head(graph: Graph, lg: Any, head: Graph, branches: list[str], prefix: str = "",
                   where: str = "head") -> list[str]:
    """Apply rules 2-4 to ``graph`` (the merged network of ``lg``) in place; return the names of
    the removed nodes."""
    from spdnn.merge.layer_graph import MergeError

    ends = [_block_value(graph, lg, b) for b in branches]
    sizes = [tuple(int(d) for d in graph.type_of(v).shape[2:]) for v in ends]
    if any(len(s) != 2 for s in sizes):
        raise MergeError(f"spdnn-merge-head: the branches must be feature maps; {branches} give {sizes}")
    forms = {"pooled": _form(graph, lg, "pooled", branches, ends, sizes, min(sizes, key=_area), prefix),
             "unpooled": _form(graph, lg, "unpooled", branches, ends, sizes, max(sizes, key=_area), prefix)}
    _check_head(head, graph, forms, where)
    out = _graft(graph, head, prefix, forms)
    output = graph.output_nodes()[0].name
    old = graph.inputs_of(output)[0]
    want, got = graph.type_of(old).sample_shape, graph.type_of(out).sample_shape
    if got != want:
        raise MergeError(f"spdnn-merge-head: the head {where!r} outputs {list(got)}, the parents {list(want)}")
    graph.disconnect(output, 0)
    graph.connect(out, output, 0)
    return _remove_dead(graph)


def _area(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def _block_value(graph: Graph, lg: Any, block: str) -> Value:
    """The value of merged block ``block`` after its tail ops."""
    _check_branch(lg, block)
    x = block
    for op in lg.block(block).tail:
        x = next(u for u, _, _ in graph.users_of(x)
                 if graph.node(u).op == op.op and M.MERGED_FROM in graph.meta_of(u))
    return Value(x, 0)


def _form(graph: Graph, lg: Any, form: str, branches: list[str], ends: list[Value], sizes, target, prefix) -> Value:
    from spdnn.merge.layer_graph import MergeError

    values = []
    for block, value, size in zip(branches, ends, sizes, strict=True):
        big, small = (size, target) if form == "pooled" else (target, size)
        if big[0] % small[0] or big[1] % small[1]:
            raise MergeError(f"spdnn-merge-head: branch {block!r} ({size[0]}x{size[1]}) and {target[0]}x{target[1]} "
                             "do not differ by an integer factor")
        factor = [big[0] // small[0], big[1] // small[1]]
        if factor != [1, 1]:
            name = graph.unique_name(f"{prefix}{form}_{block}")
            if form == "pooled":
                kind = lg.pool_kinds.get(lg.block(block).members[0].parent, "max_pool2d")
                graph.add_node(name, kind, {"kernel_size": factor}, [value])
            else:
                graph.add_node(name, "repeat_unpool", {"factor": factor}, [value])
            infer_node(graph, name)
            value = Value(name, 0)
        values.append(value)
    name = graph.unique_name(f"{prefix}{form}")
    graph.add_node(name, "concat", {"axis": 1}, values)
    infer_node(graph, name)
    return Value(name, 0)


def _check_head(head: Graph, graph: Graph, forms: dict[str, Value], where: str) -> None:
    names = sorted(n.name for n in head.input_nodes())
    if names != sorted(FORMS) or len(head.output_nodes()) != 1:
        raise PassError(f"spdnn-merge-head: the head {where!r} must have the inputs 'pooled' and 'unpooled' and one "
                        f"output; it has inputs {names} and {len(head.output_nodes())} outputs")
    for form, value in forms.items():
        have, want = graph.type_of(value).sample_shape, head.out_types(form)[0].sample_shape
        if have[1:] != want[1:]:
            raise PassError(f"spdnn-merge-head: the head {where!r} declares input {form!r} of height and width "
                            f"{list(want[1:])}, but the {form} form of the branches is {list(have[1:])}")


def _graft(graph: Graph, head: Graph, prefix: str, forms: dict[str, Value]) -> Value:
    """Copy the head's layers (their input widths inferred anew, rule 3); return its output value."""
    values = {(name, 0): value for name, value in forms.items()}
    for name in head.topo_order():
        node = head.node(name)
        if node.op in ("input", "output"):
            continue
        new = prefix + name
        if new in graph:
            raise PassError(f"spdnn-merge-head: the merged network has a layer named {new!r} already; set a prefix")
        attrs = node.attrs.model_dump()
        for key in ("in_channels", "in_features"):
            attrs.pop(key, None)
        graph.add_node(new, node.op, attrs, [values[(v.node, v.port)] for v in head.inputs_of(name)])
        for key in (M.ORIGIN, M.SOURCE):
            if key in head.meta_of(name):
                graph.meta_of(new)[key] = head.meta_of(name)[key]
        infer_node(graph, new)
        values[(name, 0)] = Value(new, 0)
    last = head.inputs_of(head.output_nodes()[0].name)[0]
    return values[(last.node, last.port)]


def _remove_dead(graph: Graph) -> list[str]:
    """Remove every node with no path to an output (rule 4); return their names."""
    live: set[str] = set()
    stack = [n.name for n in graph.output_nodes()]
    while stack:
        n = stack.pop()
        if n not in live:
            live.add(n)
            stack.extend(v.node for v in graph.inputs_of(n))
    dead = [n for n in reversed(graph.topo_order()) if n not in live and graph.node(n).op != "input"]
    for n in dead:
        graph.remove(n)
    return dead
