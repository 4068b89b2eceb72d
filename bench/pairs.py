"""Shared by the ONNX benchmarks: the networks they measure and interleaved timing.

Rules:
  1. The networks are every shipped spec (specs/*/*.yaml) and the SPDNN merge of specs/iris/p*.yaml
     (``--quick``: two small ones).
  2. The sides of a comparison are timed in one process, interleaved: round i runs them in a
     rotated order (A B, B A, ...), so drift in machine load hits every side alike. Each side runs
     a block of calls per round, sized once so that a block takes about ``block_s``; every side
     gets the same block size. Ratios are taken per round and reported as min/median/max.
"""

from __future__ import annotations

import io
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

import spdnn
from spdnn.merge import merge_networks

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["dynamic_filters/mnist_baseline", "vacgan_mnist/classifier"]
MERGED = "merged iris_fcdnn"


def networks(quick: bool, only: str = "") -> list[tuple[str, spdnn.Graph]]:
    """(name, graph) of every shipped spec and the merged iris network (rule 1); ``only``: a
    comma-separated list of names to keep (``depth/net3,merged iris_fcdnn``)."""
    if quick:
        return [(name, spdnn.load_spec(ROOT / "specs" / f"{name}.yaml")) for name in QUICK]
    paths = {f"{p.parent.name}/{p.stem}": p for p in sorted(ROOT.glob("specs/*/*.yaml"))}
    names = [*paths, MERGED]
    wanted = [n.strip() for n in only.split(",") if n.strip()] or names
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise SystemExit(f"unknown network(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    out = []
    for name in (n for n in names if n in wanted):
        if name == MERGED:
            parents = [spdnn.load_spec(p) for p in sorted(ROOT.glob("specs/iris/p*.yaml"))]
            out.append((name, merge_networks(parents, "iris_fcdnn").graph))
        else:
            out.append((name, spdnn.load_spec(paths[name])))
    return out


def sample_inputs(graph: spdnn.Graph, batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, *graph.out_types(n.name)[0].sample_shape, generator=g)
                 for n in graph.input_nodes())


def torch_onnx_export(module: torch.nn.Module, graph: spdnn.Graph, xs: tuple[torch.Tensor, ...]) -> bytes:
    """``torch.onnx.export`` (TorchScript exporter) of ``module``, batch dimension dynamic."""
    names = [n.name for n in graph.input_nodes()]
    outs = [f"out{i}" for i in range(len(graph.output_nodes()))]
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, xs, buf, dynamo=False, input_names=names, output_names=outs,
                          dynamic_axes={n: {0: "N"} for n in names + outs})
    return buf.getvalue()


def block_size(fns: list[Callable[[], object]], block_s: float) -> int:
    """Calls per block so that the slowest side's block takes about ``block_s`` (at least 1)."""
    slowest = 0.0
    for fn in fns:
        fn()  # warm-up
        start = time.perf_counter()
        fn()
        slowest = max(slowest, time.perf_counter() - start)
    return max(1, int(block_s / max(slowest, 1e-9)))


def interleaved(fns: list[Callable[[], object]], rounds: int, calls: int) -> list[list[float]]:
    """Per side, the time of one call in each round (rule 2)."""
    times: list[list[float]] = [[] for _ in fns]
    for r in range(rounds):
        order = list(range(len(fns)))
        order = order[r % len(order):] + order[: r % len(order)]
        for i in order:
            fn = fns[i]
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[i].append((time.perf_counter() - start) / calls)
    return times


def spread(ratios: list[float]) -> str:
    """``min/median/max`` of per-round ratios."""
    return f"{min(ratios):6.2f} {statistics.median(ratios):6.2f} {max(ratios):6.2f}"


def rounds_within(seconds_per_round: float, rounds: int, budget_s: float, least: int = 3) -> int:
    """``rounds``, cut so one network takes about ``budget_s`` (never fewer than ``least``)."""
    return max(least, min(rounds, int(budget_s / max(seconds_per_round, 1e-9))))
