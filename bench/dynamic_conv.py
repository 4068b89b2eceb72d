"""Dynamic convolution (filter repository, seed 000) against a static convolution of the same
shape and against the grouped-convolution trick for per-sample filters.

Usage:
    python bench/dynamic_conv.py            # batch 32, 32x32x32 -> 32 channels, 3x3, M = 32
    python bench/dynamic_conv.py --quick    # small shapes, few pairs (smoke test)

torch: forward + backward, three sides timed in interleaved pairs (A B, then B A, ...), ratios
of the dynamic conv's time over each other side, per pair; min/median/max printed.
onnxruntime: forward of spdnn's exported models (dynamic batch) in sessions with spinning
disabled, dynamic over static, interleaved the same way. The grouped trick has no ONNX form
with a dynamic batch (its group count is the batch), so it is timed in torch only.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from spdnn.backends.onnx_exporter import export_onnx

import spdnn


def graph(op: str, c: int, out: int, m: int, size: int) -> spdnn.Graph:
    g = spdnn.Graph(op)
    g.add_node("x", "input", {"shape": [c, size, size]})
    if op == "dynamic_conv2d":
        g.add_node("w", "input", {"shape": [out * m]})
        g.add_node("conv", op, {"out_channels": out, "kernel_size": 3, "padding": 1, "repository_size": m},
                   ["x", "w"])
    else:
        g.add_node("conv", op, {"out_channels": out, "kernel_size": 3, "padding": 1, "bias": False}, ["x"])
    g.add_node("y", "output", {}, ["conv"])
    spdnn.infer_shapes(g)
    return g


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def pair_ratios(a, b, pairs: int) -> list[float]:
    """Time a and b alternately (a b, b a, ...); per-pair ratios a/b."""
    a(), b()  # warm-up
    ratios = []
    for i in range(pairs):
        if i % 2:
            tb, ta = timed(b), timed(a)
        else:
            ta, tb = timed(a), timed(b)
        ratios.append(ta / tb)
    return ratios


def summary(label: str, ratios: list[float]) -> str:
    return (f"{label:<44} min {min(ratios):.2f}x  median {statistics.median(ratios):.2f}x  "
            f"max {max(ratios):.2f}x  ({len(ratios)} pairs)")


def session(model: bytes) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def main() -> list[str]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small shapes, few pairs (smoke test)")
    args = ap.parse_args()
    batch, c, out, m, size, pairs = (4, 8, 8, 8, 16, 4) if args.quick else (32, 32, 32, 32, 32, 21)
    torch.manual_seed(0)
    dyn_g, static_g = graph("dynamic_conv2d", c, out, m, size), graph("conv2d", c, out, m, size)
    dyn, static = spdnn.build_torch(dyn_g, seed=0), spdnn.build_torch(static_g, seed=0)
    x = torch.randn(batch, c, size, size, requires_grad=True)
    w = torch.randn(batch, out * m, requires_grad=True)
    repository = dyn.conv.weight

    def run_dynamic():
        dyn(x, w).sum().backward()

    def run_static():
        static(x).sum().backward()

    def run_grouped():  # per-sample filters built explicitly, batch folded into groups
        filters = torch.einsum("nom,mchw->nochw", w.reshape(batch, out, m), repository)
        y = F.conv2d(x.reshape(1, batch * c, size, size), filters.reshape(batch * out, c, 3, 3),
                     padding=1, groups=batch)
        y.reshape(batch, out, size, size).sum().backward()

    lines = [f"batch {batch}, {c}x{size}x{size} -> {out} channels, 3x3, repository M = {m}",
             summary("torch fwd+bwd: dynamic / static conv", pair_ratios(run_dynamic, run_static, pairs)),
             summary("torch fwd+bwd: dynamic / grouped-conv trick", pair_ratios(run_dynamic, run_grouped, pairs))]
    dyn_s = session(export_onnx(dyn_g, dyn.state_dict()).SerializeToString())
    static_s = session(export_onnx(static_g, static.state_dict()).SerializeToString())
    xn, wn = x.detach().numpy(), w.detach().numpy()
    got = dyn_s.run(None, {"x": xn, "w": wn})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, dyn(x, w).numpy(), atol=1e-3, rtol=1e-3)
    lines.append(summary("onnxruntime fwd: dynamic / static conv", pair_ratios(
        lambda: dyn_s.run(None, {"x": xn, "w": wn}), lambda: static_s.run(None, {"x": xn}), pairs)))
    for line in lines:
        print(line)
    return lines


if __name__ == "__main__":
    main()
