"""Dynamic convolution (filter repository, seed 000) against a static convolution of the same
shape and against the grouped-convolution trick for per-sample filters.

Usage:
    python bench/dynamic_conv.py            # batch 32, 32x32x32 -> 32 channels, 3x3, M = 32, 31 pairs, best of 3
    python bench/dynamic_conv.py --pairs 61 --threads 1 --best-of 3
    python bench/dynamic_conv.py --quick    # small shapes, few pairs (smoke test)

torch: forward + backward, timed in interleaved pairs (A B, then B A, ...), ratios per pair;
min/median/max printed. First spdnn's module (the formulation its build rule picked, named in
the line) over a static conv and over the hand-written grouped-convolution trick; then each
formulation tried ("tried" lines) over the static conv: the module forced to linearity (batched
matmul; the only form before the build rule), linearity on channels_last maps, linearity with
the mixing as a 1x1 grouped conv, and the module forced to the grouped filter synthesis. Each
side of a pair is its shortest of --best-of back-to-back runs (the machine may be shared).
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


def timed(fn, best_of: int = 1) -> float:
    """The shortest of ``best_of`` back-to-back calls (damps another process's bursts)."""
    times = []
    for _ in range(best_of):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def pair_ratios(a, b, pairs: int, best_of: int = 1) -> list[float]:
    """Time a and b alternately (a b, b a, ...); per-pair ratios a/b."""
    a(), b()  # warm-up
    ratios = []
    for i in range(pairs):
        if i % 2:
            tb, ta = timed(b, best_of), timed(a, best_of)
        else:
            ta, tb = timed(a, best_of), timed(b, best_of)
        ratios.append(ta / tb)
    return ratios


def summary(label: str, ratios: list[float]) -> str:
    return (f"{label:<58} min {min(ratios):.2f}x  median {statistics.median(ratios):.2f}x  "
            f"max {max(ratios):.2f}x  ({len(ratios)} pairs)")


def tried_formulations(dyn, batch: int, out: int, m: int) -> dict:
    """Each formulation tried, as a forward function of (x, w): the module's two forms (forced),
    and two linearity variants not kept (channels_last maps; the mixing as a 1x1 grouped conv)."""
    layer, repository = dyn.conv, dyn.conv.weight
    chosen = layer.formulation

    def module_form(formulation):
        def forward(x, w):
            layer.formulation = formulation
            try:
                return dyn(x, w)
            finally:
                layer.formulation = chosen
        return forward

    def channels_last(x, w):
        maps = F.conv2d(x.contiguous(memory_format=torch.channels_last),
                        repository.contiguous(memory_format=torch.channels_last), None, 1, 1)
        pixels = maps.permute(0, 2, 3, 1).flatten(1, 2)  # (N, H*W, M), a view of channels_last maps
        y = torch.bmm(pixels, w.reshape(batch, out, m).transpose(1, 2))
        return y.unflatten(1, maps.shape[2:]).permute(0, 3, 1, 2)

    def mixing_1x1(x, w):
        maps = F.conv2d(x, repository, None, 1, 1)
        y = F.conv2d(maps.reshape(1, batch * m, *maps.shape[2:]), w.reshape(batch * out, m, 1, 1), groups=batch)
        return y.reshape(batch, out, *maps.shape[2:])

    return {"linearity, bmm": module_form("linearity"), "linearity, channels_last bmm": channels_last,
            "linearity, 1x1 grouped-conv mixing": mixing_1x1, "grouped, K = W B + grouped conv": module_form("grouped")}


def session(model: bytes) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def main() -> list[str]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small shapes, few pairs (smoke test)")
    ap.add_argument("--pairs", type=int, default=31, help="interleaved pairs per comparison (default 31)")
    ap.add_argument("--best-of", type=int, default=3,
                    help="each side of a pair is its shortest of this many back-to-back runs (default 3)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's)")
    args = ap.parse_args()
    if args.pairs < 1 or args.best_of < 1:
        ap.error(f"--pairs and --best-of must be at least 1, got {args.pairs} and {args.best_of}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    batch, c, out, m, size, pairs = (4, 8, 8, 8, 16, 4) if args.quick else (32, 32, 32, 32, 32, args.pairs)
    best = args.best_of
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

    chosen = dyn.conv.formulation
    lines = [f"batch {batch}, {c}x{size}x{size} -> {out} channels, 3x3, repository M = {m}, "
             f"{torch.get_num_threads()} torch threads, best of {best}; spdnn picks {chosen}",
             summary(f"torch fwd+bwd: dynamic ({chosen}) / static conv", pair_ratios(run_dynamic, run_static, pairs, best)),
             summary(f"torch fwd+bwd: dynamic ({chosen}) / grouped-conv trick",
                     pair_ratios(run_dynamic, run_grouped, pairs, best))]
    with torch.no_grad():
        want = dyn(x, w)
    for name, forward in tried_formulations(dyn, batch, out, m).items():
        with torch.no_grad():  # every formulation computes the same thing
            torch.testing.assert_close(forward(x, w), want, atol=1e-4, rtol=1e-4)
        run = (lambda forward=forward: forward(x, w).sum().backward())
        lines.append(summary(f"tried fwd+bwd: {name} / static", pair_ratios(run, run_static, pairs, best)))
    dyn_s = session(export_onnx(dyn_g, dyn.state_dict()).SerializeToString())
    static_s = session(export_onnx(static_g, static.state_dict()).SerializeToString())
    xn, wn = x.detach().numpy(), w.detach().numpy()
    got = dyn_s.run(None, {"x": xn, "w": wn})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, dyn(x, w).numpy(), atol=1e-3, rtol=1e-3)
    lines.append(summary("onnxruntime fwd: dynamic / static conv", pair_ratios(
        lambda: dyn_s.run(None, {"x": xn, "w": wn}), lambda: static_s.run(None, {"x": xn}), pairs, best)))
    for line in lines:
        print(line)
    return lines


if __name__ == "__main__":
    main()
