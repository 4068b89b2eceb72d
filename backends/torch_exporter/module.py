"""IR graph -> trainable ``nn.Module``.

The module's submodules are named after the IR nodes (``conv1.weight`` in the state dict);
``forward`` runs a schedule precomputed in topological order, like torch.fx's Interpreter.
"""

from __future__ import annotations

import io

import torch
from torch import nn

from spdnn.errors import ExportError
from spdnn.ir import meta as M
from spdnn.ir.graph import Graph
from spdnn.ops import get_op
from spdnn.passes.infer_shapes import infer_shapes

from .lowerings import BOUNDARY_OPS, LOWERINGS, UNSUPPORTED, lower

__all__ = ["SpdnnModule", "build_torch_module", "load_weights", "state_dict_bytes"]


class SpdnnModule(nn.Module):
    """A torch module generated from an spdnn graph.

    ``forward`` takes the graph inputs positionally (in declaration order) or by name and
    returns the single output tensor, or a tuple of outputs in declaration order.
    """

    def __init__(self, graph: Graph):
        super().__init__()
        if any(M.OUT_TYPES not in graph.meta_of(n.name) for n in graph):
            infer_shapes(graph)
        self.graph_name = graph.name
        self.input_names: list[str] = [n.name for n in graph.input_nodes()]
        self.output_names: list[str] = [n.name for n in graph.output_nodes()]
        self._input_shapes = {n: tuple(graph.out_types(n)[0].sample_shape) for n in self.input_names}
        slot: dict[tuple[str, int], int] = {}
        for i, name in enumerate(self.input_names):
            slot[(name, 0)] = i
        steps: list[tuple[str, str, list[int], list[int]]] = []
        for node in graph:
            if node.op in BOUNDARY_OPS:
                continue
            if node.op in UNSUPPORTED or node.op not in LOWERINGS:
                why = UNSUPPORTED.get(node.op, "no lowering registered")
                raise ExportError(f"node {node.name!r}: op {node.op!r} cannot be lowered to torch: {why}")
            if hasattr(nn.Module, node.name) or node.name in self.__dict__:
                raise ExportError(f"node name {node.name!r} clashes with an nn.Module attribute; rename the layer")
            in_types = [graph.type_of(v) for v in graph.inputs_of(node.name)]
            self.add_module(node.name, lower(node, in_types, graph.out_types(node.name)))
            n_out = get_op(node.op).num_outputs(node.attrs)
            outs = []
            for port in range(n_out):
                slot[(node.name, port)] = len(slot)
                outs.append(slot[(node.name, port)])
            ins = [slot[(v.node, v.port)] for v in graph.inputs_of(node.name)]
            steps.append((node.name, node.op, ins, outs))
        self._steps = steps
        self._num_slots = len(slot)
        self._result_slots = [slot[(v.node, v.port)] for o in self.output_names
                              for v in graph.inputs_of(o)]

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor):
        values: list = [None] * self._num_slots
        given = self._bind(args, kwargs)
        for i, x in enumerate(given):
            values[i] = x
        modules = self._modules
        for name, op, ins, outs in self._steps:
            try:
                result = modules[name](*[values[i] for i in ins])
            except Exception as e:
                raise RuntimeError(f"while executing node {name!r} ({op}) of {self.graph_name!r}: {e}") from e
            if len(outs) == 1:
                values[outs[0]] = result
            else:
                for i, r in zip(outs, result, strict=True):
                    values[i] = r
        results = tuple(values[i] for i in self._result_slots)
        return results[0] if len(results) == 1 else results

    def _bind(self, args, kwargs) -> list[torch.Tensor]:
        if len(args) + len(kwargs) != len(self.input_names):
            raise TypeError(f"{self.graph_name} takes inputs {self.input_names}, got "
                            f"{len(args)} positional and {sorted(kwargs)} keyword")
        bound = list(args)
        for name in self.input_names[len(args):]:
            if name not in kwargs:
                raise TypeError(f"{self.graph_name}: missing input {name!r}")
            bound.append(kwargs[name])
        for name, x in zip(self.input_names, bound, strict=True):
            want = self._input_shapes[name]
            if tuple(x.shape[1:]) != want:
                raise ValueError(f"{self.graph_name}: input {name!r} must have shape (N, "
                                 f"{', '.join(map(str, want))}), got {tuple(x.shape)}")
        return bound

    def extra_repr(self) -> str:
        return f"graph={self.graph_name!r}, inputs={self.input_names}, outputs={self.output_names}"


def build_torch_module(graph: Graph, seed: int | None = None) -> SpdnnModule:
    """Build a freshly initialised torch module for ``graph``.

    Args:
        graph: a verified graph (shapes are inferred if missing).
        seed: when given, parameters are initialised from this seed (reproducible weights).
    """
    graph.verify()
    if seed is None:
        return SpdnnModule(graph)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SpdnnModule(graph)


def state_dict_bytes(module: nn.Module) -> bytes:
    """The module's state dict serialised by ``torch.save`` (load with ``weights_only=True``)."""
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.getvalue()


def load_weights(module: nn.Module, weights: dict) -> nn.Module:
    """Load numpy arrays (e.g. from the ONNX importer) into ``module``; every key must match."""
    import numpy as np

    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ExportError(f"weights do not fit the module: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return module
