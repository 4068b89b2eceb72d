"""ONNX export and inference speed, measured against references in the same run.

1. Export time: spdnn's exporter (written from the IR) against ``torch.onnx.export`` (the
   TorchScript exporter; the dynamo exporter needs onnxscript, which spdnn does not depend on).
2. Inference time: onnxruntime (CPU provider, all graph optimisations) against torch eager, at
   batch 1 and 32.

Each time is the median of several runs after a warm-up; ratios > 1 mean spdnn / onnxruntime is
faster.

    python bench/onnx_speed.py            # all networks
    python bench/onnx_speed.py --quick    # two small networks, fewer repeats (smoke test)
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from spdnn.backends.onnx_exporter import export_onnx, make_session

import spdnn

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = ["dynamic_filters/mnist_baseline", "vacgan_mnist/classifier", "vacgan_mnist/generator",
            "vacgan_mnist/discriminator", "iris/p4", "depth/net6"]
QUICK = NETWORKS[:2]


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def export_times(graph, module, x, repeats: int) -> tuple[float, float]:
    state = module.state_dict()
    ours = median_time(lambda: export_onnx(graph, state).SerializeToString(), repeats)

    def torch_export():
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (x,), buf, dynamo=False, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})

    return ours, median_time(torch_export, max(1, repeats // 2))


def inference_times(graph, module, batch: int, repeats: int) -> tuple[float, float]:
    shape = graph.input_nodes()[0].attrs.shape
    x = torch.randn(batch, *shape)
    session = make_session(export_onnx(graph, module.state_dict()).SerializeToString(), ["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.numpy()}
    ort_time = median_time(lambda: session.run(None, feed), repeats)
    with torch.no_grad():
        torch_time = median_time(lambda: module(x), repeats)
    return ort_time, torch_time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    names, repeats = (QUICK, 3) if args.quick else (NETWORKS, 10)
    print(f"{'network':32} {'export spdnn':>12} {'torch.onnx':>11} {'ratio':>6} | "
          f"{'b1 ort':>8} {'b1 torch':>9} {'ratio':>6} | {'b32 ort':>8} {'b32 torch':>9} {'ratio':>6}")
    for name in names:
        graph = spdnn.load_spec(ROOT / "specs" / f"{name}.yaml")
        module = spdnn.build_torch(graph, seed=0).eval()
        x = torch.randn(1, *graph.input_nodes()[0].attrs.shape)
        ours, theirs = export_times(graph, module, x, repeats)
        row = f"{name:32} {ours * 1e3:10.1f}ms {theirs * 1e3:9.1f}ms {theirs / ours:6.1f} |"
        for batch in (1, 32):
            ort_t, torch_t = inference_times(graph, module, batch, repeats)
            row += f" {ort_t * 1e3:6.2f}ms {torch_t * 1e3:7.2f}ms {torch_t / ort_t:6.2f} |"
        print(row.rstrip(" |"))
    print("ratios: reference time / spdnn-or-onnxruntime time (> 1: faster than the reference)")


if __name__ == "__main__":
    np.random.seed(0)
    torch.manual_seed(0)
    main()
