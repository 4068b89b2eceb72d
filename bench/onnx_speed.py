"""ONNX export time: spdnn's exporter against ``torch.onnx.export``, on every shipped spec and the
merged iris network.

spdnn side: ``export_onnx_bytes(graph, module.state_dict())``, the serialised model including the
weights' SHA-256 and ``onnx.checker.check_model(full_check=True)``. torch side:
``torch.onnx.export(module, x, BytesIO, dynamo=False)`` (the TorchScript exporter; the dynamo
exporter needs onnxscript, which spdnn does not depend on), batch dimension dynamic; it runs no
checker. Both sides export the same module with the same weights, interleaved in one process
(A B, B A, ...; see pairs.py); the ratio is torch time / spdnn time per round (> 1: spdnn is
faster), printed as min/median/max over the rounds.

    python bench/onnx_speed.py            # every network, up to 10 rounds each
    python bench/onnx_speed.py --quick    # two small networks, 3 rounds (smoke test)
    python bench/onnx_speed.py --only depth/net5,vacgan_mnist/generator --rounds 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from pairs import block_size, interleaved, networks, rounds_within, sample_inputs, spread, torch_onnx_export  # noqa: E402
from spdnn.backends.onnx_exporter import export_onnx_bytes  # noqa: E402

import spdnn  # noqa: E402

HEADER = (f"{'network':28} {'params':>9} {'rounds':>6} {'spdnn ms':>9} {'torch ms':>9} | "
          f"{'torch/spdnn ratio: min':>22} {'median':>6} {'max':>6}")


def measure(graph: spdnn.Graph, rounds: int, budget_s: float) -> tuple[int, float, float, list[float]]:
    module = spdnn.build_torch(graph, seed=0).eval()
    xs = sample_inputs(graph, 1)

    def ours():
        return export_onnx_bytes(graph, module.state_dict())

    def theirs():
        return torch_onnx_export(module, graph, xs)

    calls = block_size([ours, theirs], 0.02)
    probe = interleaved([ours, theirs], 1, calls)
    rounds = rounds_within(calls * (probe[0][0] + probe[1][0]), rounds, budget_s)
    spdnn_t, torch_t = interleaved([ours, theirs], rounds, calls)
    ratios = [t / s for s, t in zip(spdnn_t, torch_t, strict=True)]
    return rounds, statistics.median(spdnn_t), statistics.median(torch_t), ratios


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="two small networks, 3 rounds")
    ap.add_argument("--only", default="", help="comma-separated networks to run, e.g. depth/net3,depth/net4")
    ap.add_argument("--rounds", type=int, default=10, help="interleaved rounds per network (default 10)")
    ap.add_argument("--budget", type=float, default=20.0, help="seconds per network, cuts rounds (default 20)")
    args = ap.parse_args()
    rounds = 3 if args.quick else args.rounds
    print(HEADER)
    medians = []
    for name, graph in networks(args.quick, args.only):
        params = sum(n.numel() for n in spdnn.build_torch(graph, seed=0).state_dict().values())
        n, ours, theirs, ratios = measure(graph, rounds, args.budget)
        medians.append(statistics.median(ratios))
        print(f"{name:28} {params:9,} {n:6} {ours * 1e3:9.2f} {theirs * 1e3:9.2f} | {'':16}{spread(ratios)}",
              flush=True)
    print(f"lowest median torch/spdnn ratio: {min(medians):.2f} (> 1: spdnn exports faster)")


if __name__ == "__main__":
    main()
