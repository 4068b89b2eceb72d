"""A tiny spdnn plugin (used by tests/test_plugins.py): the op ``demo_scale``, the torch-only op
``demo_torch_only`` and the pass ``demo-scale-outputs``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

from pydantic import Field

import spdnn
from spdnn.ir.graph import Graph
from spdnn.ops.base import OpAttrs, same_shape


class ScaleAttrs(OpAttrs):
    """y = factor * x."""

    factor: float = Field(2.0, gt=0)
    """The factor."""


def _torch_scale(node, in_types, out_types):
    import torch

    class Scale(torch.nn.Module):
        def forward(self, x):
            return x * node.attrs.factor

    return Scale()


def _onnx_scale(e) -> None:
    import numpy as np

    factor = e.const(f"{e.node.name}.factor", np.array(e.node.attrs.factor, dtype=np.float32))
    e.op("Mul", [e.inputs[0], factor], e.outputs, suffix="")


spdnn.register_op("demo_scale", attrs=ScaleAttrs, inputs=("x",), outputs=("y",), infer=same_shape,
                  doc="multiply by a constant", torch=_torch_scale, onnx=_onnx_scale)
spdnn.register_op("demo_torch_only", inputs=("x",), outputs=("y",), infer=same_shape,
                  doc="identity without an ONNX form", torch=lambda node, ins, outs: _identity(), onnx=None)


def _identity():
    import torch

    return torch.nn.Identity()


@spdnn.register_pass
@dataclass(frozen=True)
class ScaleOutputsPass(spdnn.Pass):
    """Put a demo_scale layer in front of every graph output.

    Rules:
      1. Each graph output reads a new ``<output>_scale`` layer (factor ``factor``).
      2. Idempotent: an output already fed by a demo_scale layer is left alone.
    """

    name: ClassVar[str] = "demo-scale-outputs"

    factor: Annotated[float, Field(gt=0)] = 3.0
    """The factor of each inserted layer."""

    def call(self, graph: Graph) -> spdnn.PassResult:
        changed = False
        for out in graph.output_nodes():
            (src,) = graph.inputs_of(out.name)
            if graph.node(src.node).op == "demo_scale":
                continue
            scale = graph.add_node(graph.unique_name(f"{out.name}_scale"), "demo_scale",
                                   {"factor": self.factor}, inputs=[src])
            graph.disconnect(out.name, 0)
            graph.connect(scale.name, out.name, 0)
            changed = True
        if changed:
            spdnn.infer_shapes(graph)
        return spdnn.PassResult(graph, changed)
