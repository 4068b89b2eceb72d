"""Build a graph in Python (no YAML), inspect it, run a pass, and get a torch module.

Run from the repository root:  python examples/02_build_graph_in_python/run.py
"""

import torch

import spdnn

g = spdnn.Graph("two_branch")
g.add_node("image", "input", {"shape": [1, 32, 32]})
g.add_node("fine", "conv2d", {"out_channels": 8, "kernel_size": 3, "padding": "same"}, ["image"])
g.add_node("coarse", "conv2d", {"out_channels": 8, "kernel_size": 7, "padding": "same"}, ["image"])
# Same tensor twice is fine: edges carry input slots.
g.add_node("joined", "concat", {"axis": 1}, ["fine", "coarse", "fine"])
g.add_node("act", "relu", {}, ["joined"])
g.add_node("head", "conv2d", {"out_channels": 1, "kernel_size": 1}, ["act"])
g.add_node("mask", "output", {}, ["head"])

spdnn.run_passes(g, "infer-shapes")  # the same passes the CLI runs, by name
g.verify()
print(g)                              # textual IR with shapes
print(spdnn.summarize(g).to_text())

module = spdnn.build_torch(g, seed=0)
out = module(torch.randn(2, 1, 32, 32))
print("output", tuple(out.shape))
assert out.shape == (2, 1, 32, 32)
assert spdnn.count_params(g) == sum(p.numel() for p in module.parameters())
