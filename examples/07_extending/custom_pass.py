"""A worked pass: ``replace-activation`` written and registered here, run with the built-in
``insert-dropout`` from Python, from pipeline text (what ``spdnn compile --pass`` takes) and from
a spec's ``passes:`` list; the three give the same graph.

Run: python examples/07_extending/custom_pass.py
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import spdnn
from spdnn.ir.graph import Graph, Node
from spdnn.ir.printer import format_graph


@spdnn.register_pass
@dataclass(frozen=True)
class ReplaceActivationPass(spdnn.Pass):
    """Replace every activation of one kind by another (default: relu by elu).

    Rules:
      1. Every node whose op is ``old`` becomes a node of op ``new`` with default attributes,
         keeping its name, inputs, users and spec location.
      2. Idempotent once ``old`` is gone.
    """

    name: ClassVar[str] = "replace-activation"

    old: Literal["relu", "elu", "tanh", "sigmoid", "leaky_relu"] = "relu"
    """The activation to replace."""
    new: Literal["relu", "elu", "tanh", "sigmoid", "leaky_relu"] = "elu"
    """The activation put in its place."""

    def call(self, graph: Graph) -> spdnn.PassResult:
        matches = graph.nodes(self.old)
        for node in matches:
            graph.replace_node(node.name, Node(node.name, self.new, spdnn.get_op(self.new).attrs()))
        return spdnn.PassResult(graph, bool(matches))


LAYERS = """
name: small
inputs: {image: [1, 10, 10]}
layers:
  - {name: conv1, op: conv2d, out_channels: 4, kernel_size: 3}
  - {name: act1, op: relu}
  - {name: conv2, op: conv2d, out_channels: 4, kernel_size: 3}
  - {name: act2, op: relu}
  - {op: flatten}
  - {name: fc, op: linear, out_features: 2}
"""

# 1. Python: (name, options) pairs and names
from_python = spdnn.load_spec_text(LAYERS)
spdnn.run_passes(from_python, [("insert-dropout", {"p": 0.2}), ("replace-activation", {"new": "tanh"})])

# 2. Pipeline text, as `spdnn compile --pass insert-dropout:p=0.2 --pass replace-activation:new=tanh`
from_text = spdnn.load_spec_text(LAYERS)
spdnn.run_passes(from_text, ["insert-dropout:p=0.2", "replace-activation:new=tanh"])

# 3. The spec's own passes: list
from_spec = spdnn.load_spec_text(LAYERS + """
passes:
  - {name: insert-dropout, p: 0.2}
  - {name: replace-activation, new: tanh}
""")

text = format_graph(from_python)
print(text)
assert format_graph(from_text) == text == format_graph(from_spec)
assert [n.op for n in from_python][1:5] == ["conv2d", "dropout", "tanh", "conv2d"]

# Applying insert-dropout again changes nothing (idempotent).
spdnn.run_passes(from_python, "insert-dropout:p=0.2")
assert format_graph(from_python) == text

# A bad option is refused with the same message from every front end.
try:
    spdnn.run_passes(from_python, [("replace-activation", {"new": "swish"})])
except spdnn.SpdnnError as e:
    print(f"error: {e}")
else:
    raise AssertionError("a bad option was accepted")
