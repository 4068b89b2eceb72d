"""The IR graph: typed nodes over a networkx ``MultiDiGraph`` with ported edges.

Design notes:

* ``Graph`` owns plain dicts: each node's record, its filled input slots (slot -> producer
  value) and its uses ((consumer, slot) -> producer port). Passes change structure only through
  its methods, which keep the invariants and both directions in step. ``view()`` hands out a
  read-only networkx copy for analyses (networkx is imported only then: building and querying
  graphs, and ``spdnn --help``, do not need it).
* An edge ``src -> dst`` carries ``src_port`` (which output of ``src``) and ``dst_port``
  (which input slot of ``dst``); a slot holds one edge, so ``add(x, x)`` is two edges.
* Node payloads (:class:`Node`) are frozen; derived facts (output types, source locations)
  live in per-node ``meta`` dicts under the keys of :mod:`spdnn.ir.meta`.
* Iteration order is deterministic: a topological order that breaks ties by insertion order.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from spdnn.errors import UnknownOpError, VerifyError
from spdnn.ir import meta as M
from spdnn.ir.naming import is_valid_name, unique_name
from spdnn.ir.types import TensorType
from spdnn.ops import OpAttrs, get_op

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["Node", "Value", "Graph"]


@dataclass(frozen=True)
class Node:
    """One layer of the network.

    Attributes:
        name: unique identifier (also the torch submodule and ONNX node name).
        op: registered op name.
        attrs: the op's validated attribute model.
    """

    name: str
    op: str
    attrs: OpAttrs

    def replace(self, **changes: Any) -> Node:
        """A copy with some fields changed (``attrs`` may be a dict of changed attributes)."""
        attrs = changes.get("attrs")
        if isinstance(attrs, Mapping):
            changes["attrs"] = type(self.attrs).model_validate({**self.attrs.model_dump(), **attrs})
        return replace(self, **changes)


@dataclass(frozen=True)
class Value:
    """Reference to one output of a node: ``Value("pool1", 1)`` is pool1's indices."""

    node: str
    port: int = 0

    def __str__(self) -> str:
        return self.node if self.port == 0 else f"{self.node}:{self.port}"


ValueLike = str | Value | tuple[str, int] | Node


def _as_value(v: ValueLike) -> Value:
    if isinstance(v, Value):
        return v
    if isinstance(v, Node):
        return Value(v.name)
    if isinstance(v, tuple):
        return Value(v[0], v[1])
    return Value(v)


@dataclass
class _NodeRecord:
    node: Node
    index: int
    meta: dict[str, Any] = field(default_factory=dict)


class Graph:
    """A directed acyclic graph of :class:`Node` s with ported edges.

    Example:
        >>> g = Graph("tiny")
        >>> x = g.add_node("x", "input", {"shape": [4]})
        >>> fc = g.add_node("fc", "linear", {"out_features": 2}, inputs=[x])
        >>> _ = g.add_node("y", "output", inputs=[fc])
        >>> [n.name for n in g]
        ['x', 'fc', 'y']
    """

    def __init__(self, name: str = "graph"):
        self.name = name
        #: free-form graph-level metadata (source spec, merge provenance, ...)
        self.meta: dict[str, Any] = {}
        self._recs: dict[str, _NodeRecord] = {}  # in insertion (= index) order
        self._ins: dict[str, dict[int, Value]] = {}  # node -> {input slot: producer value}
        self._uses: dict[str, dict[tuple[str, int], int]] = {}  # node -> {(consumer, slot): port}
        self._counter = itertools.count()
        self._order: list[str] | None = None

    # ------------------------------------------------------------------ building
    def _port_by_index(self, v: Value) -> Value:
        """``v`` with a port given by name (``("pool", "indices")``) turned into its index."""
        if isinstance(v.port, int) or v.node not in self._recs:
            return v
        node = self._recs[v.node].node
        try:
            return Value(v.node, get_op(node.op).port_index(v.port, node.attrs))
        except KeyError:
            raise VerifyError(f"{node.op} node {v.node!r} has no output port {v.port!r}") from None

    def add_node(
        self,
        name: str,
        op: str,
        attrs: Mapping[str, Any] | OpAttrs | None = None,
        inputs: Iterable[ValueLike] = (),
    ) -> Node:
        """Add a node and connect ``inputs`` to its input slots 0, 1, ...

        Raises:
            UnknownOpError: ``op`` is not registered.
            VerifyError: the name is invalid or taken, an input does not exist, or the
                attributes do not validate.
        """
        opdef = get_op(op)
        if not is_valid_name(name):
            raise VerifyError(f"invalid node name {name!r}: use letters, digits and _")
        if name in self._recs:
            raise VerifyError(f"a node named {name!r} already exists in graph {self.name!r}")
        if not isinstance(attrs, OpAttrs):
            try:
                attrs = opdef.attrs.model_validate(dict(attrs or {}))
            except ValidationError as e:
                raise VerifyError(f"invalid attributes for {op} node {name!r}: {e}") from e
        elif not isinstance(attrs, opdef.attrs):
            raise VerifyError(f"{op} node {name!r} needs {opdef.attrs.__name__}, got {type(attrs).__name__}")
        values = [_as_value(v) for v in inputs]
        for v in values:
            if v.node not in self._recs:
                raise VerifyError(f"input {v} of node {name!r} does not exist")
        values = [self._port_by_index(v) for v in values]
        node = Node(name, op, attrs)
        self._recs[name] = _NodeRecord(node, next(self._counter))
        self._ins[name] = {}
        self._uses[name] = {}
        for slot, v in enumerate(values):
            self._add_edge(v, name, slot)
        self._order = None
        return node

    def connect(self, src: ValueLike, dst: str, dst_port: int) -> None:
        """Connect output ``src`` to input slot ``dst_port`` of ``dst`` (slot must be free)."""
        v = self._port_by_index(_as_value(src))
        for n in (v.node, dst):
            if n not in self._recs:
                raise VerifyError(f"node {n!r} does not exist")
        if dst_port in self._ins[dst]:
            raise VerifyError(f"input slot {dst_port} of {dst!r} is already connected")
        self._add_edge(v, dst, dst_port)
        self._order = None

    def disconnect(self, dst: str, dst_port: int) -> None:
        """Remove the edge feeding input slot ``dst_port`` of ``dst``."""
        if dst_port not in self._ins.get(dst, {}):
            raise VerifyError(f"input slot {dst_port} of {dst!r} is not connected")
        self._remove_edge(dst, dst_port)
        self._order = None

    def replace_node(self, name: str, node: Node) -> None:
        """Swap the payload of ``name`` (same name) keeping edges and meta."""
        if node.name != name:
            raise VerifyError(f"replace_node keeps the name {name!r}; to rename, add the new node and move the uses with replace_all_uses_with()")
        self._rec(name).node = node

    def replace_all_uses_with(self, old: ValueLike, new: ValueLike) -> int:
        """Point every consumer of output ``old`` at ``new``; returns the number of uses moved."""
        o, n = self._port_by_index(_as_value(old)), self._port_by_index(_as_value(new))
        moved = 0
        for (dst, k), port in list(self._uses[o.node].items()):
            if port == o.port and dst != n.node:
                self._remove_edge(dst, k)
                self._add_edge(n, dst, k)
                moved += 1
        self._order = None
        return moved

    def remove(self, name: str) -> None:
        """Remove a node that has no users.

        Raises:
            VerifyError: the node still has users.
        """
        users = self.users_of(name)
        if users:
            raise VerifyError(f"cannot remove {name!r}: still used by {sorted({u for u, _, _ in users})}")
        for slot in list(self._ins[name]):
            self._remove_edge(name, slot)
        del self._recs[name], self._ins[name], self._uses[name]
        self._order = None

    def unique_name(self, base: str) -> str:
        """A fresh node name derived from ``base``."""
        return unique_name(base, self._recs)

    # ------------------------------------------------------------------ queries
    def node(self, name: str) -> Node:
        """The node called ``name`` (KeyError if absent)."""
        return self._rec(name).node

    def meta_of(self, name: str) -> dict[str, Any]:
        """Mutable metadata dict of a node (see :mod:`spdnn.ir.meta` for the keys)."""
        return self._rec(name).meta

    def out_types(self, name: str) -> list[TensorType]:
        """Output types of a node, as computed by shape inference."""
        try:
            return self._rec(name).meta[M.OUT_TYPES]
        except KeyError:
            raise VerifyError(f"no shapes for {name!r}: run shape inference first") from None

    def type_of(self, value: ValueLike) -> TensorType:
        """Type of one value (a node output)."""
        v = value if type(value) is Value and type(value.port) is int else self._port_by_index(_as_value(value))
        return self.out_types(v.node)[v.port]

    def inputs_of(self, name: str) -> list[Value]:
        """Producers feeding ``name``, ordered by input slot."""
        ins = self._ins[name]
        if len(ins) < 2:
            return list(ins.values())
        return [ins[slot] for slot in sorted(ins)]

    def users_of(self, name: str) -> list[tuple[str, int, int]]:
        """Consumers of ``name`` as (consumer, dst_port, src_port), deterministic order."""
        recs = self._recs
        out = [(v, k, port) for (v, k), port in self._uses[name].items()]
        return sorted(out, key=lambda t: (recs[t[0]].index, t[1]))

    def predecessors(self, name: str) -> list[str]:
        """Distinct producer nodes of ``name`` in slot order."""
        return list(dict.fromkeys(v.node for v in self.inputs_of(name)))

    def successors(self, name: str) -> list[str]:
        """Distinct consumer nodes of ``name`` in insertion order."""
        return list(dict.fromkeys(u for u, _, _ in self.users_of(name)))

    def topo_order(self) -> list[str]:
        """Node names in topological order, ties broken by insertion order (cached).

        Raises:
            VerifyError: the graph has a cycle.
        """
        if self._order is None:
            self._order = self._lexicographic_topo_order()
        return list(self._order)

    def _lexicographic_topo_order(self) -> list[str]:
        """Kahn's algorithm taking the smallest insertion index among the ready nodes."""
        recs = self._recs
        if all(recs[v.node].index < recs[n].index for n, ins in self._ins.items() for v in ins.values()):
            return list(recs)  # insertion order is topological: it is the answer
        waiting = {n: len(ins) for n, ins in self._ins.items()}  # one per edge, as networkx counts
        ready = [(recs[n].index, n) for n, k in waiting.items() if k == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            _, n = heapq.heappop(ready)
            order.append(n)
            for v, _ in self._uses[n]:
                waiting[v] -= 1
                if waiting[v] == 0:
                    heapq.heappush(ready, (recs[v].index, v))
        if len(order) < len(recs):
            import networkx as nx  # only to name the cycle in the error

            cycle = nx.find_cycle(self.view())
            path = " -> ".join(str(e[0]) for e in cycle) + f" -> {cycle[0][0]}"
            raise VerifyError(f"graph {self.name!r} has a cycle: {path}")
        return order

    def records(self) -> Iterator[tuple[Node, list[Value], dict[str, Any]]]:
        """``(node, inputs in slot order, meta)`` of every node in topological order: one pass
        for code that reads a whole graph (the meta dicts are the graph's own, as ``meta_of``)."""
        recs, ins = self._recs, self._ins
        if self._order is None:
            self._order = self._lexicographic_topo_order()
        for n in self._order:
            rec, slots = recs[n], ins[n]
            yield rec.node, list(slots.values()) if len(slots) < 2 else [slots[k] for k in sorted(slots)], rec.meta

    def __iter__(self) -> Iterator[Node]:
        recs = self._recs
        return (recs[n].node for n in self.topo_order())

    def __len__(self) -> int:
        return len(self._recs)

    def __contains__(self, name: object) -> bool:
        return name in self._recs

    def nodes(self, op: str | None = None) -> list[Node]:
        """Nodes in topological order, optionally only those of one op."""
        return [n for n in self if op is None or n.op == op]

    def input_nodes(self) -> list[Node]:
        """Graph inputs in insertion order."""
        return sorted(self.nodes("input"), key=lambda n: self._rec(n.name).index)

    def output_nodes(self) -> list[Node]:
        """Graph outputs in insertion order."""
        return sorted(self.nodes("output"), key=lambda n: self._rec(n.name).index)

    def view(self) -> nx.MultiDiGraph:
        """A read-only networkx copy of the structure, for analyses: nodes in insertion order with
        their record under ``rec``, edges keyed by input slot with ``src_port``. Later changes
        to the graph do not show in it."""
        import networkx as nx

        g = nx.MultiDiGraph()
        for n, rec in self._recs.items():
            g.add_node(n, rec=rec)
        for dst, ins in self._ins.items():
            for slot, v in ins.items():
                g.add_edge(v.node, dst, key=slot, src_port=v.port)
        return nx.freeze(g)

    def num_edges(self) -> int:
        return sum(len(ins) for ins in self._ins.values())

    def copy(self, name: str | None = None) -> Graph:
        """An independent copy (payloads are immutable and shared; meta dicts are copied)."""
        g = Graph(name or self.name)
        g.meta = dict(self.meta)
        for n, rec in self._recs.items():
            g._recs[n] = _NodeRecord(rec.node, next(g._counter), dict(rec.meta))
            g._ins[n] = dict(self._ins[n])
            g._uses[n] = dict(self._uses[n])
        return g

    def structure(self) -> list[tuple[str, str, dict[str, Any], list[str]]]:
        """A plain, comparable description: (name, op, attrs, inputs) per node in topo order."""
        return [
            (n.name, n.op, n.attrs.model_dump(mode="json"), [str(v) for v in self.inputs_of(n.name)])
            for n in self
        ]

    # ------------------------------------------------------------------ checking
    def verify(self) -> None:
        """Check the invariants; raise VerifyError listing every violation.

        Checks: acyclic; registered ops; attributes of the op's model (validated when they were
        made, and frozen, so not validated again); every input slot
        filled exactly once and arity within the op's bounds; source ports exist; unique,
        valid names; at least one input and one output; every output reachable from an input.
        """
        problems: list[str] = []
        try:
            order = self.topo_order()
        except VerifyError as e:
            raise VerifyError(str(e)) from None
        for name in order:
            node = self.node(name)
            try:
                opdef = get_op(node.op)
            except UnknownOpError as e:
                problems.append(f"{name}: {e}")
                continue
            if node.name != name or not is_valid_name(name):
                problems.append(f"{name}: invalid or mismatched node name {node.name!r}")
            if not isinstance(node.attrs, opdef.attrs):  # an instance was validated when made, and is frozen
                problems.append(f"{name}: attributes are {type(node.attrs).__name__}, {node.op} needs "
                                f"{opdef.attrs.__name__}")
            slots = self._slots(name)
            lo, hi = opdef.input_arity()
            if slots != list(range(len(slots))):
                problems.append(f"{name}: input slots {slots} are not filled exactly once from 0")
            if len(slots) < lo or (hi is not None and len(slots) > hi):
                want = f"{lo}" if lo == hi else f"{lo}..{hi if hi is not None else 'n'}"
                problems.append(f"{name}: {node.op} takes {want} inputs, has {len(slots)}")
            for v in self.inputs_of(name):
                src = self.node(v.node)
                n_out = get_op(src.op).num_outputs(src.attrs)
                if v.port >= n_out:
                    problems.append(f"{name}: reads output {v.port} of {v.node}, which has {n_out}")
        inputs = {n.name for n in self.input_nodes()}
        if not inputs:
            problems.append("the graph has no input node")
        if not self.output_nodes():
            problems.append("the graph has no output node")
        reach = self._descendants(inputs)
        for out in self.output_nodes():
            if out.name not in reach:
                problems.append(f"{out.name}: output is not reachable from any input")
        if problems:
            raise VerifyError(f"graph {self.name!r} is invalid:\n  " + "\n  ".join(problems))

    # ------------------------------------------------------------------ internals
    def _rec(self, name: str) -> _NodeRecord:
        try:
            return self._recs[name]
        except KeyError:
            raise KeyError(f"no node named {name!r} in graph {self.name!r}") from None

    def _slots(self, name: str) -> list[int]:
        return sorted(self._ins[name])

    def _add_edge(self, src: Value, dst: str, slot: int) -> None:
        self._ins[dst][slot] = src
        self._uses[src.node][(dst, slot)] = src.port

    def _remove_edge(self, dst: str, slot: int) -> None:
        src = self._ins[dst].pop(slot)
        del self._uses[src.node][(dst, slot)]

    def _descendants(self, starts: Iterable[str]) -> set[str]:
        """Nodes reachable from ``starts`` by one or more edges."""
        seen: set[str] = set()
        queue = deque(starts)
        while queue:
            for v, _ in self._uses[queue.popleft()]:
                if v not in seen:
                    seen.add(v)
                    queue.append(v)
        return seen

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self)} nodes, {self.num_edges()} edges)"

    def __str__(self) -> str:
        from spdnn.ir.printer import format_graph

        return format_graph(self)
