"""A worked op: swish(x) = x * sigmoid(x), defined once with its torch lowering and ONNX emitter,
used in a spec, compiled, and checked torch against onnxruntime.

Run: python examples/07_extending/swish_op.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

import spdnn
from spdnn.ops.base import same_shape


class Swish(torch.nn.Module):
    """x * sigmoid(x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


def emit_swish(e) -> None:
    """ONNX: Sigmoid, then Mul with the input (``e`` is the exporter's Emit context)."""
    s = e.op("Sigmoid", [e.inputs[0]], suffix="_sigmoid")
    e.op("Mul", [e.inputs[0], s], e.outputs, suffix="")


spdnn.register_op(
    "swish", inputs=("x",), outputs=("y",), infer=same_shape,
    flops=lambda attrs, ins, outs: 4 * outs[0].sample_numel,  # exp, add, divide, multiply
    doc="swish activation: x * sigmoid(x)",
    torch=lambda node, in_types, out_types: Swish(),
    onnx=emit_swish,  # onnx=None would declare swish torch only
)

SPEC = """
name: swish_net
inputs: {image: [1, 12, 12]}
layers:
  - {name: conv1, op: conv2d, out_channels: 4, kernel_size: 3}
  - {name: act1, op: swish}
  - {op: flatten}
  - {name: fc, op: linear, out_features: 3}
passes:
  - {name: insert-dropout, p: 0.1}
"""

graph = spdnn.load_spec_text(SPEC, "swish_net.yaml")
print(spdnn.summarize(graph).to_text())
assert graph.node("conv1_dropout").op == "dropout"  # the spec's passes: ran
assert spdnn.summarize(graph).total_flops > 0

module = spdnn.build_torch(graph, seed=0).eval()
x = torch.randn(3, 1, 12, 12)
with torch.no_grad():
    expected = module(x)
if isinstance(expected, dict):
    expected = next(iter(expected.values()))

with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "swish_net.onnx"
    model = spdnn.export_onnx(graph, module.state_dict())
    assert [n.op_type for n in model.graph.node if n.name.startswith("act1")] == ["Sigmoid", "Mul"]
    path.write_bytes(model.SerializeToString())
    outputs, provider = spdnn.run_onnx(str(path), {"image": x.numpy()})
got = next(iter(outputs.values()))
err = float(np.abs(got - expected.numpy()).max())
print(f"torch vs onnxruntime ({provider}), batch 3: max abs difference {err:.2e}")
assert err < 1e-5, err
