"""Export a spec to ONNX, run it in onnxruntime, import it back and compare with torch.

Run from the repository root:  python examples/03_onnx_roundtrip/run.py
"""

from pathlib import Path

import numpy as np
import torch
from spdnn.backends.torch_exporter import load_weights

import spdnn

ROOT = Path(__file__).resolve().parents[2]

graph = spdnn.load_spec(ROOT / "specs" / "vacgan_mnist" / "discriminator.yaml")
module = spdnn.build_torch(graph, seed=0).eval()

model = spdnn.export_onnx(graph, module.state_dict())          # ONNX written from the IR
x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
outputs, provider = spdnn.run_onnx(model.SerializeToString(), [x])
print(f"onnxruntime ({provider}):", outputs["p_real"].ravel())

with torch.no_grad():
    reference = module(torch.from_numpy(x)).numpy()
print("torch:                      ", reference.ravel())
assert np.allclose(outputs["p_real"], reference, rtol=1e-3, atol=1e-5)

imported = spdnn.import_onnx(model)                              # and back into the IR
again = load_weights(spdnn.build_torch(imported.graph), imported.weights).eval()
with torch.no_grad():
    assert torch.equal(again(torch.from_numpy(x)), module(torch.from_numpy(x)))
print("YAML -> IR -> ONNX -> IR -> torch reproduces the module exactly")
