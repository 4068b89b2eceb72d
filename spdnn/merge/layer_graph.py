"""The SPDNN layer graph: one node per conv / fully connected layer (thesis §3.1, App. B).

Rules of the translation from an IR network (thesis S1 R1-R3, S3 L3379-3382):
  1. Every conv2d, conv_transpose2d and linear node becomes a layer node ("block"); the ops that
     follow it up to the next layer (batch_norm, activations, dropout, noise) are its ``tail``.
  2. Pooling, unpooling, flatten and reshape are not nodes: they are kept, in order, on the edge
     where they sat (``Edge.transitions``) and their effect lives in the labels (sticky pooling).
  3. Each parent contributes its layers; all parents share one ``input`` and one ``output`` node.
  4. Parents are any DAG of single-output ops with one input and one output; every parent's
     input must have the same shape. Branches (a value read by several ops) are out-edges.
  5. Joins: a channel ``concat`` inside a parent is not a node: the layer reading it gets one
     edge from every concatenated branch (the layer graph's own meaning of several producers,
     to_network rule 3), and ops after the concat (pooling, activation) are put on every one of
     those edges (they commute with a channel concatenation). A residual ``add`` is a join
     block (kind ``A``, structure ``+`` plus its pooling) with an edge from every summand; the
     ops after it (activation) are its tail. It is not a layer: it does not count in label
     distances and it never merges with another block (summands must keep their shapes), and
     every block feeding it gets one common width (:func:`spdnn.merge.to_network.to_network`).
  5. Parents are taken in the order of their names (not the order given), so the order on the
     command line never changes the result: every "first" below means alphabetically first.
  6. Each member keeps its own layer op, tail ops and input resolution, and each edge the
     transitions of every parent edge it stands for (``Edge.sources``), so that a merge can
     choose between them by a stated rule (:mod:`spdnn.merge.decisions`) and report the losers.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from spdnn.errors import SpdnnError
from spdnn.ir import meta as M
from spdnn.ir.graph import Graph, Value
from spdnn.layer_options import LayerOptions
from spdnn.ops import OpAttrs

if TYPE_CHECKING:
    import networkx as nx

T = TypeVar("T")

__all__ = ["Op", "Member", "Block", "LayerGraph", "LAYER_OPS", "JOIN", "JOIN_OPS", "POOL_OPS", "UNPOOL_OPS",
           "from_networks", "MergeError"]

LAYER_OPS = {"conv2d": "C", "conv_transpose2d": "T", "linear": "F"}
#: joins a parent may contain (rule 5); an ``add`` becomes a join block of kind JOIN
JOIN_OPS = {"add", "concat"}
JOIN = "A"
POOL_OPS = {"max_pool2d", "avg_pool2d"}
UNPOOL_OPS = {"repeat_unpool", "upsample", "max_unpool2d"}
_RESHAPE_OPS = {"flatten", "reshape"}
_TRANSITION_OPS = POOL_OPS | UNPOOL_OPS | _RESHAPE_OPS
INPUT, OUTPUT = "input", "output"


class MergeError(SpdnnError):
    """Parents that SPDNN merging cannot take, or options that cannot be met."""


@dataclass(frozen=True)
class Op:
    """One IR op kept for reconstruction: its op name, validated attributes and layer options
    (frozen, init, spectral norm; :mod:`spdnn.layer_options`), which a merged layer keeps from
    the member that wins (:mod:`spdnn.merge.decisions`)."""

    op: str
    attrs: OpAttrs
    options: LayerOptions | None = field(default=None, compare=False)

    def options_text(self) -> str:
        """The non-default layer options as compact JSON ("" for none)."""
        if self.options is None:
            return ""
        return json.dumps(self.options.model_dump(mode="json", exclude_defaults=True), sort_keys=True)

    def signature(self) -> tuple[str, str]:
        """Hashable identity of the op and its attributes (computed once)."""
        cached = self.__dict__.get("_signature")
        if cached is None:
            cached = (self.op, json.dumps(self.attrs.model_dump(mode="json"), sort_keys=True))
            object.__setattr__(self, "_signature", cached)
        return cached

    def geometry(self) -> tuple[tuple[str, Any], ...]:
        """The attributes that are not a width (``in_*``/``out_*`` channels and features): what
        members of one merged layer may disagree on (stride, padding, dilation, groups, bias)."""
        cached = self.__dict__.get("_geometry")
        if cached is None:
            keys, values = _geometry_fields(type(self.attrs))
            cached = tuple(zip(keys, values(vars(self.attrs))))
            object.__setattr__(self, "_geometry", cached)
        return cached

    def describe(self) -> str:
        """``max_pool2d(kernel_size=[2, 2])``: the op with its non-default attributes."""
        attrs = self.attrs.model_dump(mode="json", exclude_defaults=True)
        return f"{self.op}(" + ", ".join(f"{k}={v}" for k, v in attrs.items()) + ")"


def frozen_instance(cls: type[T], **fields: Any) -> T:
    """An instance of the frozen dataclass ``cls`` with every field given, made without its
    ``__init__`` (which sets each field with ``object.__setattr__``: three times slower; the
    merge makes one member per parent layer and one refusal per refused merge)."""
    instance = object.__new__(cls)
    vars(instance).update(fields)
    return instance


_WIDTH_KEYS = {"in_channels", "out_channels", "in_features", "out_features"}


@functools.cache
def _geometry_fields(attrs_type: type[OpAttrs]) -> tuple[tuple[str, ...], Callable[[dict], tuple]]:
    """The non-width fields of an attrs model, and a function reading their values from an
    instance's ``__dict__`` as a tuple."""
    keys = tuple(k for k in attrs_type.model_fields if k not in _WIDTH_KEYS)
    return keys, (lambda d: tuple(d[k] for k in keys)) if len(keys) < 2 else operator.itemgetter(*keys)


@dataclass(frozen=True)
class Member:
    """A parent layer that a block stands for: its width, and (not part of its identity) its
    layer op, tail ops and the spatial size of its input in its own parent."""

    parent: str
    layer: str
    width: int
    op: Op | None = field(default=None, compare=False, repr=False)
    tail: tuple[Op, ...] = field(default=(), compare=False, repr=False)
    in_size: tuple[int, ...] = field(default=(), compare=False, repr=False)
    #: the parent's layers feeding this one ("" for the input), in the order of the parent's
    #: concatenation (the summands of an add), and the names of its tail nodes
    sources: tuple[str, ...] = field(default=("",), compare=False, repr=False)
    tail_names: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def _of(cls, parent: str, layer: str, width: int, op: Op | None, tail: tuple[Op, ...], in_size: tuple[int, ...],
            sources: tuple[str, ...], tail_names: tuple[str, ...], variant: tuple) -> Member:
        """``Member(...)`` for the merge's own use (one per parent layer), made fast, with its
        variant (``variant_of(op, tail)``, shared by members of equal ops)."""
        return frozen_instance(cls, parent=parent, layer=layer, width=width, op=op, tail=tail, in_size=in_size,
                               sources=sources, tail_names=tail_names, _variant=variant)

    @staticmethod
    def variant_of(op: Op | None, tail: tuple[Op, ...]) -> tuple:
        """The variant of a member with layer ``op`` and ``tail`` (see :meth:`variant`)."""
        return (op.geometry() if op else (), op.options_text() if op else "",
                tuple((t.op, t.attrs, t.options_text()) for t in tail))

    def variant(self) -> tuple:
        """What a merged layer keeps of one member: layer geometry and tail ops (computed once:
        every contraction and the rebuild vote with it)."""
        cached = self.__dict__.get("_variant")
        if cached is None:
            cached = self.variant_of(self.op, self.tail)
            object.__setattr__(self, "_variant", cached)
        return cached

    def __str__(self) -> str:
        return f"{self.parent}.{self.layer}"


@dataclass
class Block:
    """A node of the layer graph.

    Attributes:
        kind: "input", "output", the layer letter: C (conv), T (transposed conv), F (FC), or A
            for a residual add (rule 5).
        layer: the layer op (conv2d/linear/...) of the winning member (spdnn.merge.decisions), the
            template when rebuilding.
        tail: ops after the layer (BN, activation, dropout), from the winning member.
        pooling: the sticky pooling stack of the data this layer sees (innermost last; +f pooling,
            -f an unpooling with no pooling to remove).
        members: parent layers merged into this block.
        label: (structure, distance) of the latest labelling.
    """

    kind: str
    layer: Op | None = None
    tail: tuple[Op, ...] = ()
    pooling: tuple[int, ...] = ()
    members: list[Member] = field(default_factory=list)
    label: tuple[str, int] | None = None

    @property
    def kernel(self) -> tuple[int, int] | None:
        return getattr(self.layer.attrs, "kernel_size", None) if self.layer else None

    @property
    def structure(self) -> str:
        """The label's structure part as the thesis writes it: 3C, 30F, 3C8P (S1 L1140-1146)."""
        if self.kind in (INPUT, OUTPUT):
            return self.kind
        if self.kind == "F":
            return f"{self.layer.attrs.out_features}F"
        return _structure(self.kind, self.kernel, self.pooling)

    @property
    def slug(self) -> str:
        """Identifier-friendly structure: c3, c3p8, f30, t5, c3_5 (3x5 kernel)."""
        return _slug(self)

    def extended_key(self) -> tuple:
        """Structure plus stride, padding, dilation, groups, activation and normalisation."""
        if self.layer is None:
            return (self.structure,)
        a = self.layer.attrs.model_dump(mode="json")
        geometry = tuple((k, str(a[k])) for k in ("stride", "padding", "dilation", "groups") if k in a)
        return (self.structure, geometry, tuple(op.signature() for op in self.tail))


@functools.cache
def _structure(kind: str, kernel: tuple[int, int] | None, pooling: tuple[int, ...]) -> str:
    """The structure of a conv-like layer or a residual add (few distinct values: cached)."""
    pool, unpool = _products(pooling)
    suffix = (f"{pool}P" if pool > 1 else "") + (f"{unpool}U" if unpool > 1 else "")
    if kind == JOIN:
        return "+" + suffix
    kh, kw = kernel
    return (f"{kh}" if kh == kw else f"{kh}x{kw}") + kind + suffix


def _slug(block: Block) -> str:
    if block.kind == JOIN:
        return "add"
    if block.kind == "F":
        return f"f{block.layer.attrs.out_features}"
    kh, kw = block.kernel
    pool, unpool = _products(block.pooling)
    return (f"{block.kind.lower()}{kh}" + ("" if kh == kw else f"_{kw}") + (f"p{pool}" if pool > 1 else "")
            + (f"u{unpool}" if unpool > 1 else ""))


def _products(stack: tuple[int, ...]) -> tuple[int, int]:
    """(product of poolings, product of unmatched unpoolings) of a pooling stack."""
    pool = unpool = 1
    for f in stack:
        if f > 0:
            pool *= f
        else:
            unpool *= -f
    return pool, unpool


@dataclass(frozen=True)
class Edge:
    """Ops between a producer block's output and a consumer block's layer.

    ``sources`` lists (parent, transitions) of every parent edge this edge stands for; ``parent``
    is the parent whose transitions were kept (the branch's "original network")."""

    transitions: tuple[Op, ...] = ()
    sources: tuple[tuple[str, tuple[Op, ...]], ...] = ()
    parent: str = ""

    @classmethod
    def of(cls, parent: str, transitions: tuple[Op, ...]) -> Edge:
        return cls(transitions, ((parent, transitions),), parent)


class LayerGraph:
    """Directed acyclic graph of blocks; no parallel edges (a merged edge keeps the first
    parent's transitions). Node ids are unique strings; iteration is in topological order with
    insertion-order ties. Stored in plain dicts (``g`` builds a networkx copy for analyses)."""

    def __init__(self, name: str = "spdnn"):
        self.name = name
        self._blocks: dict[str, Block] = {}  # in insertion order
        self._index: dict[str, int] = {}
        self._succ: dict[str, dict[str, Edge]] = {}  # in edge insertion order
        self._pred: dict[str, dict[str, Edge]] = {}
        self._counter = itertools.count()
        #: sample shape of the shared input, and the parents' output sample shape
        self.input_shape: tuple[int, ...] = ()
        self.output_shape: tuple[int, ...] = ()
        self.parents: list[str] = []
        #: the pooling op each parent uses (avg_pool2d if it has one, else max_pool2d)
        self.pool_kinds: dict[str, str] = {}
        self._order: list[str] | None = None
        self._nx: nx.DiGraph | None = None

    def add(self, node_id: str, block: Block) -> None:
        if node_id not in self._blocks:
            self._succ[node_id], self._pred[node_id] = {}, {}
        self._blocks[node_id] = block
        self._index[node_id] = next(self._counter)
        self._order = self._nx = None

    def connect(self, u: str, v: str, edge: Edge | None = None) -> None:
        """Add the edge ``u -> v`` unless it exists (then the first edge's transitions stay)."""
        if v not in self._succ[u]:
            self._succ[u][v] = self._pred[v][u] = edge or Edge()
            self._order = self._nx = None

    def block(self, node_id: str) -> Block:
        return self._blocks[node_id]

    def edge(self, u: str, v: str) -> Edge:
        return self._succ[u][v]

    def edges(self) -> Iterator[tuple[str, str]]:
        """Every edge (u, v): sources in insertion order, each source's edges in insertion order."""
        return ((u, v) for u, succ in self._succ.items() for v in succ)

    def edge_items(self) -> Iterator[tuple[str, str, Edge]]:
        """Every edge with its payload, ``(u, v, edge)``, in the order of :meth:`edges`."""
        return ((u, v, e) for u, succ in self._succ.items() for v, e in succ.items())

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._blocks

    def index(self, node_id: str) -> int:
        """Insertion index of a node (the tie-break of the topological order)."""
        return self._index[node_id]

    def order(self) -> list[str]:
        """Topological order, ties broken by insertion (cached until the structure changes)."""
        if self._order is None:
            index = self._index
            by_index = sorted(self._blocks, key=index.__getitem__)
            if all(index[u] < index[v] for u, succ in self._succ.items() for v in succ):
                self._order = by_index  # insertion order is topological: it is the answer
                return list(by_index)
            waiting = {n: len(p) for n, p in self._pred.items()}
            ready = [(index[n], n) for n, k in waiting.items() if k == 0]
            heapq.heapify(ready)
            order = []
            while ready:
                _, n = heapq.heappop(ready)
                order.append(n)
                for v in self._succ[n]:
                    waiting[v] -= 1
                    if waiting[v] == 0:
                        heapq.heappush(ready, (index[v], v))
            if len(order) < len(self._blocks):
                raise MergeError(f"layer graph {self.name!r} has a cycle")  # contraction prevents this
            self._order = order
        return list(self._order)

    def walk(self) -> Iterator[tuple[str, Block, Mapping[str, Edge]]]:
        """``(node id, block, its in-edges by producer)`` in topological order: one pass for the
        stages that visit every block (do not change the graph while walking it)."""
        blocks, pred = self._blocks, self._pred
        return ((n, blocks[n], pred[n]) for n in self._topological())

    def _topological(self) -> list[str]:
        if self._order is None:
            self.order()
        return self._order

    def predecessors(self, node_id: str, ordered: bool = True) -> list[str]:
        """Producers of ``node_id``, by insertion index (``ordered=False``: any order, faster)."""
        preds = self._pred[node_id]
        return sorted(preds, key=self._index.__getitem__) if ordered else list(preds)

    def successors(self, node_id: str, ordered: bool = True) -> list[str]:
        """Consumers of ``node_id``, by insertion index (``ordered=False``: any order, faster)."""
        succ = self._succ[node_id]
        return sorted(succ, key=self._index.__getitem__) if ordered else list(succ)

    def layers(self) -> list[str]:
        """Layer node ids (input and output excluded) in topological order."""
        return [n for n in self.order() if n not in (INPUT, OUTPUT)]

    def __len__(self) -> int:
        return len(self._blocks)

    @property
    def g(self) -> nx.DiGraph:
        """A networkx copy (cached until the structure changes): node attributes ``block`` and
        ``index``, edge attribute ``edge``. For analyses and pictures; do not modify it."""
        if self._nx is None:
            import networkx as nx

            g = nx.DiGraph()
            for n, block in self._blocks.items():
                g.add_node(n, block=block, index=self._index[n])
            for u, v in self.edges():
                g.add_edge(u, v, edge=self._succ[u][v])
            self._nx = g
        return self._nx

    def copy(self) -> LayerGraph:
        other = LayerGraph(self.name)
        other.copy_meta(self)
        for n in sorted(self._blocks, key=self._index.__getitem__):
            b = self._blocks[n]
            other.add(n, Block(b.kind, b.layer, b.tail, b.pooling, list(b.members), b.label))
        for u, v in self.edges():
            other.connect(u, v, self._succ[u][v])
        return other

    def copy_meta(self, other: LayerGraph) -> None:
        """Take the shapes, parents and pooling kinds of ``other``."""
        self.input_shape, self.output_shape, self.parents = other.input_shape, other.output_shape, list(other.parents)
        self.pool_kinds = dict(other.pool_kinds)

    def structure(self) -> dict[str, Any]:
        """A plain description for tests and reports: nodes with labels and members, edges."""
        return {
            "nodes": {n: {"label": format_label(self.block(n).label),
                          "members": [str(m) for m in self.block(n).members]} for n in self.order()},
            "edges": sorted(self.edges()),
        }


def format_label(label: tuple[str, int] | None) -> str:
    """A label as the thesis prints it: ``(3C8P,4)``."""
    return "" if label is None else f"({label[0]},{label[1]})"


def _pool_factor(op: Op) -> int:
    stride = getattr(op.attrs, "strides", None) or op.attrs.kernel_size
    return int(stride[0])


def _unpool_factor(op: Op) -> int:
    a = op.attrs
    if op.op == "repeat_unpool":
        return int(a.factor[0])
    if op.op == "upsample":
        if a.scale_factor is None:
            raise MergeError("upsample to a fixed size cannot be expressed as an unpooling factor; "
                             "use scale_factor")
        return int(a.scale_factor[0])
    return int(a.strides[0])


def apply_transitions(pooling: tuple[int, ...], transitions: tuple[Op, ...]) -> tuple[int, ...]:
    """Sticky pooling (S1 L1148-1154): pooling pushes its factor, unpooling removes one pooling,
    a fully connected layer (handled by the caller) clears all.

    The stack holds +f for a pooling and -f for an unpooling that had no pooling to remove (the
    thesis leaves that case undefined, reference 6.10(4); e.g. upsampling after a strided conv):
    it shows in the label as ``fU`` (U = un-pooling, S1 L1140) and a later pooling removes it.
    """
    stack = list(pooling)
    for op in transitions:
        if op.op in POOL_OPS:
            f = _pool_factor(op)
            if stack and stack[-1] < 0:
                stack.pop()
            else:
                stack.append(f)
        elif op.op in UNPOOL_OPS:
            f = _unpool_factor(op)
            if stack and stack[-1] > 0:
                stack.pop()
            else:
                stack.append(-f)
    return tuple(stack)


def from_networks(parents: list[Graph], name: str = "merged") -> LayerGraph:
    """Translate parent networks, in the order of their names, into one layer graph sharing a
    single input and output."""
    parents = sorted(parents, key=lambda p: p.name)
    if len(parents) < 2:
        raise MergeError("SPDNN merging needs at least two parent networks")
    lg = LayerGraph(name)
    lg.add(INPUT, Block(INPUT, label=("input", 0)))
    seen_names: set[str] = set()
    for parent in parents:
        if parent.name in seen_names:
            raise MergeError(f"two parents are called {parent.name!r}; parent names must differ")
        seen_names.add(parent.name)
    reader = _Reader(lg)
    lasts = [reader.add_parent(parent) for parent in parents]
    lg.add(OUTPUT, Block(OUTPUT))
    for feeds in lasts:
        for last, edge in feeds:
            lg.connect(last, OUTPUT, edge)
    lg.parents = [p.name for p in parents]
    reader.finish()
    return lg


#: (producing block id or INPUT, transitions since it) -- the sources of one value of a parent
_Feeds = tuple[tuple[str, tuple[Op, ...]], ...]


class _Parts(NamedTuple):
    """What a block's only member will hold, gathered while its parent is read."""

    block: Block
    parent: str
    layer: str
    width: int
    in_size: tuple[int, ...]
    sources: tuple[str, ...]
    tail_names: list[str]
    tail_ops: list[Op]


class _Reader:
    """Reads parents into a layer graph (rules 1-5) in one pass over each parent's nodes.

    Equal values are shared: one :class:`Op` per (op, attributes object, layer options), one
    tail and one transitions tuple per sequence of those ops, one input size per value and one
    :class:`Edge` per (parent, transitions), so that what is derived from them (geometry,
    member variants, vote keys) is computed once per distinct value, not once per parent layer.
    The reader fills the layer graph's tables directly (it is the only writer while it runs)."""

    def __init__(self, lg: LayerGraph):
        self.lg = lg
        self.ops: dict[tuple[str, int, int], Op] = {}
        self.tails: dict[tuple[int, ...], tuple[Op, ...]] = {(): ()}
        self.sizes: dict[tuple[int, ...], tuple[int, ...]] = {}
        self.transitions: dict[tuple[int, ...], tuple[Op, ...]] = {}
        self.parts: dict[str, _Parts] = {}

    def _endpoints(self, parent: Graph, records: list) -> tuple[str, Value]:
        """The parent's input node and the value its output reads (rule 4: one of each, shapes
        shared by every parent)."""
        lg, pname = self.lg, parent.name
        ins = [node for node, _, _ in records if node.op == "input"]
        outs = [inputs for node, inputs, _ in records if node.op == "output"]
        if len(ins) != 1 or len(outs) != 1:
            raise MergeError(f"parent {pname!r} has {len(ins)} inputs and {len(outs)} outputs; "
                             "SPDNN merging takes single-input, single-output parents")
        out_value = outs[0][0]
        in_shape = parent.out_types(ins[0].name)[0].sample_shape
        out_shape = parent.type_of(out_value).sample_shape
        named = f"parent {pname!r}" + (f" ({parent.meta['file']})" if parent.meta.get("file") else "")
        if lg.input_shape and in_shape != lg.input_shape:
            raise MergeError(f"{named} takes input {in_shape}, the others {lg.input_shape}; "
                             "parents must share one input")
        if lg.output_shape and out_shape != lg.output_shape:
            raise MergeError(f"{named} outputs {out_shape}, the others {lg.output_shape}; "
                             "parents must produce the same output")
        lg.input_shape, lg.output_shape = in_shape, out_shape
        return ins[0].name, out_value

    def finish(self) -> None:
        """Give every block its tail and its one member (tails are complete only now)."""
        tails = self.tails
        variants: dict[tuple[int, int], tuple] = {}
        for b, parent, layer, width, in_size, sources, tail_names, tail_ops in self.parts.values():
            key = tuple(map(id, tail_ops))
            tail = tails.get(key)
            if tail is None:
                tail = tails[key] = tuple(tail_ops)
            b.tail = tail
            variant = variants.get((id(b.layer), id(tail)))
            if variant is None:
                variant = variants[id(b.layer), id(tail)] = Member.variant_of(b.layer, tail)
            b.members = [Member._of(parent, layer, width, b.layer, tail, in_size, sources, tuple(tail_names), variant)]
        lg = self.lg  # every edge goes from a block read earlier to one read later (or the output)
        lg._order, lg._nx = list(lg._blocks), None

    def add_parent(self, parent: Graph) -> tuple[tuple[str, Edge], ...]:
        """Add one parent's blocks; return (block, edge) for every feed of its output."""
        lg, parts, pname = self.lg, self.parts, parent.name
        records = list(parent.records())
        source, out_value = self._endpoints(parent, records)
        lg.pool_kinds[pname] = "avg_pool2d" if any(node.op == "avg_pool2d" for node, _, _ in records) else "max_pool2d"
        ops, sizes, shared_transitions = self.ops, self.sizes, self.transitions
        blocks, index, succ, pred, counter = lg._blocks, lg._index, lg._succ, lg._pred, lg._counter
        edges: dict[int, Edge] = {}  # by id of the (shared) transitions tuple
        feeds: dict[str, _Feeds] = {source: ((INPUT, ()),)}
        pooling: dict[str, tuple[int, ...]] = {INPUT: ()}
        has_layer = False
        for node, preds, meta in records:
            op_name = node.op
            if op_name == "input" or op_name == "output":
                continue
            if len(preds) == 1 and not preds[0].port:
                incoming = feeds[preds[0].node]
            elif op_name not in JOIN_OPS or any(v.port for v in preds):
                raise MergeError(f"parent {pname!r}: node {node.name!r} ({op_name}) joins or splits paths in a "
                                 "way SPDNN merging does not take; joins must be 'add' or channel 'concat'")
            else:
                incoming = tuple(f for v in preds for f in feeds[v.node])
            if op_name == "concat":
                rank = parent.type_of(preds[0]).rank
                if node.attrs.axis % rank != 1:
                    raise MergeError(f"parent {pname!r}: concat {node.name!r} joins on axis {node.attrs.axis}; "
                                     "SPDNN merging takes channel concatenations (axis 1) only")
                feeds[node.name] = incoming  # rule 5
                continue
            attrs, options = node.attrs, meta.get(M.LAYER_OPTIONS)
            key = (op_name, id(attrs), id(options))  # the attrs and options stay alive in the Op
            op = ops.get(key)
            if op is None:
                op = ops[key] = Op(op_name, attrs, options)
            kind = LAYER_OPS.get(op_name)
            if kind is not None or op_name == "add":
                has_layer = has_layer or kind is not None
                block_id = f"{pname}__{node.name}"
                src, trans = incoming[0]
                pool = () if op_name == "linear" else apply_transitions(pooling[src], trans) if trans else pooling[src]
                if kind is None:
                    width = int(parent.out_types(node.name)[0].shape[1])
                else:
                    width = getattr(attrs, "out_channels", None) or attrs.out_features
                v = preds[0]
                in_size = parent.out_types(v.node)[v.port].sample_shape[1:]
                in_size = sizes.setdefault(in_size, in_size)
                sources = tuple("" if f == INPUT else parts[f].layer for f, _ in incoming)
                block = blocks[block_id] = Block(kind or JOIN, op, (), pool)
                index[block_id] = next(counter)
                preds_of_block: dict[str, Edge] = {}
                succ[block_id], pred[block_id] = {}, preds_of_block
                parts[block_id] = _Parts(block, pname, node.name, width, in_size, sources, [], [])
                for f_src, f_trans in incoming:
                    if f_trans:
                        f_trans = shared_transitions.setdefault(tuple(map(id, f_trans)), f_trans)
                    edge = edges.get(id(f_trans))
                    if edge is None:
                        edge = edges[id(f_trans)] = Edge.of(pname, f_trans)
                    out_edges = succ[f_src]
                    if block_id not in out_edges:
                        out_edges[block_id] = preds_of_block[f_src] = edge
                pooling[block_id] = pool
                feeds[node.name] = ((block_id, ()),)
            elif len(incoming) == 1 and not incoming[0][1] and incoming[0][0] != INPUT and \
                    op_name not in _TRANSITION_OPS:
                part = parts[incoming[0][0]]
                part.tail_names.append(node.name)
                part.tail_ops.append(op)
                feeds[node.name] = incoming
            else:  # a transition (or an op after a concatenation) applies to every branch it reads
                feeds[node.name] = tuple((src, (*trans, op)) for src, trans in incoming)
        out_feeds = feeds[out_value.node]
        if not has_layer:
            raise MergeError(f"parent {pname!r} has no conv or fully connected layer")
        if any(src == INPUT for src, _ in out_feeds):
            raise MergeError(f"parent {pname!r} passes its input straight to its output; SPDNN merging needs "
                             "a layer before the output")
        return tuple((src, Edge.of(pname, trans)) for src, trans in out_feeds)
