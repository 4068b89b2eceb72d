"""Load a paper's spec, look at it, build the torch module and train it for a few steps.

Run from the repository root:  python examples/01_yaml_to_torch/run.py
"""

from pathlib import Path

import torch

import spdnn

ROOT = Path(__file__).resolve().parents[2]

graph = spdnn.load_spec(ROOT / "specs" / "vacgan_mnist" / "classifier.yaml")
print(spdnn.summarize(graph).to_text())

model = spdnn.build_torch(graph, seed=0)
print(model)

# Synthetic data: 10 classes, 64 images. The spec ends in a softmax, so train with NLL on log-probs.
torch.manual_seed(0)
images, labels = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
optimiser = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
losses = []
for _ in range(20):
    optimiser.zero_grad()
    loss = torch.nn.functional.nll_loss(torch.log(model(images) + 1e-9), labels)
    loss.backward()
    optimiser.step()
    losses.append(loss.item())
print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")
assert losses[-1] < losses[0], "training did not reduce the loss"
