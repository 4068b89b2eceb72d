"""Shape inference: output types, parameter and FLOP counts for every node."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from spdnn.errors import Problem, ShapeError, SpecError
from spdnn.ir import meta as M
from spdnn.ir.graph import Graph
from spdnn.ir.types import TensorType
from spdnn.limits import current, human_bytes, limit_message
from spdnn.ops import get_op
from spdnn.passes.base import Pass, PassResult

__all__ = ["InferShapesPass", "SizeLimitError", "check_sizes", "infer_node", "infer_shapes"]


@dataclass(frozen=True)
class InferShapesPass(Pass):
    """Give every node its output types (``meta[OUT_TYPES]``), ``PARAMS`` and ``FLOPS``.

    Rules:
      1. Nodes are visited in topological order; a node's input types are its producers'
         output types at the connected ports.
      2. A shape rule that fails is reported naming the layer and each producer with its
         shape, at the layer's spec location when it has one.
      3. Every failure in the graph is reported at once; a node downstream of a failure is
         skipped (not reported again).
      4. Sizes are checked against ``spdnn.limits`` as each node is inferred, before anything
         is allocated: every dimension (``max_dim``), the elements of one sample of every
         tensor (``max_elements``), the parameters of each layer and of the whole network
         (``max_params``).
    """

    name: ClassVar[str] = "infer-shapes"

    def call(self, graph: Graph) -> PassResult:
        infer_shapes(graph)
        return PassResult(graph, False)


def infer_shapes(graph: Graph) -> Graph:
    """Run shape inference in place; raise SpecError listing every shape problem."""
    problems: list[Problem] = []
    failed: set[str] = set()
    total_params = 0
    for node in graph:
        inputs = graph.inputs_of(node.name)
        if any(v.node in failed for v in inputs):
            failed.add(node.name)
            continue
        try:
            infer_node(graph, node.name)
        except SizeLimitError as e:
            failed.add(node.name)
            problems.append(_locate(graph, node.name, str(e)))
            continue
        except ShapeError as e:
            failed.add(node.name)
            problems.append(_locate(graph, node.name, _describe(graph, node.name, str(e))))
            continue
        total_params += graph.meta_of(node.name)[M.PARAMS]
        if total_params > current().max_params and not problems:
            problems.append(_locate(graph, node.name, limit_message(
                f"the network reaches {_amount(total_params)} parameters at layer {node.name!r} "
                f"({human_bytes(4 * total_params)} as float32)", "max_params")))
    if problems:
        raise SpecError(problems)
    return graph


def infer_node(graph: Graph, name: str) -> list[TensorType]:
    """Infer one node whose producers already have types: store its output types, parameter and
    FLOP counts in its meta and return the types. Raises ShapeError from the op's shape rule."""
    node = graph.node(name)
    opdef = get_op(node.op)
    in_types = [graph.type_of(v) for v in graph.inputs_of(name)]
    out_types = opdef.infer(node.attrs, in_types)
    params = opdef.params(node.attrs, in_types)
    if params > current().max_params:
        raise SizeLimitError(limit_message(f"{name} would have {_amount(params)} parameters "
                                           f"({human_bytes(4 * params)} as float32)", "max_params"))
    check_sizes(name, out_types)
    meta = graph.meta_of(name)
    meta[M.OUT_TYPES] = out_types
    meta[M.PARAMS] = params
    meta[M.FLOPS] = opdef.flops(node.attrs, in_types, out_types)
    return out_types


class SizeLimitError(ShapeError):
    """A tensor or a layer is larger than ``spdnn.limits`` allows; the message names the layer."""


def check_sizes(name: str, types: list[TensorType]) -> None:
    """Raise SizeLimitError when a dimension or the per-sample element count of ``types`` (the
    outputs of node ``name``) is over its limit."""
    limits = current()
    for t in types:
        dims = t.sample_shape
        for d in dims:
            if d > limits.max_dim:
                raise SizeLimitError(limit_message(f"{name}'s output {t} has a dimension of {d:,}", "max_dim"))
        numel = t.sample_numel
        if numel > limits.max_elements:
            raise SizeLimitError(limit_message(
                f"{name}'s output {t} would have {_amount(numel)} elements per sample "
                f"({human_bytes(4 * numel)} as float32)", "max_elements"))


def _amount(n: int) -> str:
    """4_000_000_000_000 -> '4.0e12'; small counts with separators."""
    if n < 10**7:
        return f"{n:,}"
    mantissa, exponent = f"{n:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _describe(graph: Graph, name: str, message: str) -> str:
    node = graph.node(name)
    feeds = [
        f"{v.node!r} ({graph.node(v.node).op}, output {graph.type_of(v)})"
        for v in graph.inputs_of(name)
    ]
    fed = f" fed by {', '.join(feeds)}" if feeds else ""
    return f"layer {name!r} ({node.op}){fed}: {message}"


def _locate(graph: Graph, name: str, message: str) -> Problem:
    origin: Problem | None = graph.meta_of(name).get(M.ORIGIN)
    if origin is None:
        return Problem(message, file=f"<graph {graph.name}>", where=name)
    return Problem(message, origin.file, origin.line, origin.column, origin.where)
