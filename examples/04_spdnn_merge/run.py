"""Merge the thesis's App. A iris parents with SPDNN, stage by stage, then train the result.

Run from the repository root:  python examples/04_spdnn_merge/run.py
"""

from pathlib import Path

import torch

import spdnn
from spdnn.merge import contract, format_label, from_networks, label_from_input, label_from_output

ROOT = Path(__file__).resolve().parents[2]
parents = [spdnn.load_spec(p) for p in sorted((ROOT / "specs" / "iris_appa").glob("*.yaml"))]

lg = label_from_input(from_networks(parents))                 # step 1: (structure, distance) labels
print("input-side labels:", {n: format_label(lg.block(n).label) for n in lg.layers()[:5]}, "...")
first = contract(lg)                                            # step 2
print("merged in step 2:", {n: g for n, g in first.groups.items() if len(g) > 1})
second = contract(label_from_output(first.graph), tag="o")      # steps 3-4
print("refused (would make a cycle):", [str(r) for r in second.refused][:2], "...")

result = spdnn.merge_networks(parents, "iris_appa_merged", spdnn.MergeOptions(budget="largest"))
print(result.report_markdown().split("\n\n")[-2])             # reduction line
module = spdnn.build_torch(result.graph, seed=0)
x = torch.rand(2, 1, 96, 128)
target = (x > 0.5).float()
optimiser = torch.optim.Adam(module.parameters(), lr=1e-3)
for step in range(3):
    optimiser.zero_grad()
    loss = torch.nn.functional.binary_cross_entropy(module(x), target)
    loss.backward()
    optimiser.step()
    print(f"step {step}: loss {loss.item():.4f}")
