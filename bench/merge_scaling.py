"""How SPDNN merging scales with graph size.

Parents are random conv chains (kernels 3/5/7, widths 4..16, an occasional 2x2 pooling and later
its unpooling) of *different* lengths: half the parents are shorter than the mean and half
longer by the same amounts, so the total is exact. Different lengths put equal input-side
labels at different output distances, so the output-side contraction has to run its
cycle-avoiding reachability search (spdnn/merge/contract.py rule 3) and refuses some merges.
The input-side contraction never needs that search: labelling by the longest distance from the
input makes every edge go to a larger distance (contract.py rule 4), so its count is 0 by
construction and the script checks that too.

Sizes grow parents and depth together (``parents = mean length = sqrt(layer nodes)``), so the
merged network grows with the input. Each size is merged several times; sizes are interleaved
(small, large, large, small, ...) and the per-pair ratio time(large)/time(small) is reported
with min/median/max. Times are CPU seconds of this process (``time.process_time``: the merge is
single-threaded, and on a shared machine wall time mostly measures the neighbours; wall
seconds and the load average are printed too). A separate untimed run per size measures the
tracemalloc peak of the merge per layer node. The goal on a 2-core machine: 100k layer nodes
in <= 3 s and a time ratio <= 12 for 10x the nodes (linear ~ 10, quadratic ~ 100).

    python bench/merge_scaling.py            # 10k and 100k layer nodes, 3 runs each
    python bench/merge_scaling.py --quick    # 1k and 10k layer nodes, 2 runs each (smoke test)
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass
from functools import cache

import spdnn
from spdnn.merge import MergeResult, merge_networks
from spdnn.ops import OpAttrs, get_op


@cache
def _attrs(op: str, **attrs) -> OpAttrs:
    """Validated attributes, built once per distinct value (generation is not what we time)."""
    return get_op(op).attrs.model_validate(attrs)


def random_parent(name: str, layers: int, rng: random.Random) -> spdnn.Graph:
    """A conv chain with ``layers`` layer nodes (the last is the one-channel head)."""
    g = spdnn.Graph(name)
    prev = g.add_node("x", "input", _attrs("input", shape=(1, 16, 16))).name
    pooled = False
    for i in range(layers - 1):
        conv = _attrs("conv2d", out_channels=rng.randint(4, 16), kernel_size=rng.choice((3, 5, 7)), padding="same")
        prev = g.add_node(f"conv{i}", "conv2d", conv, [prev]).name
        prev = g.add_node(f"relu{i}", "relu", _attrs("relu"), [prev]).name
        if not pooled and rng.random() < 0.05:
            prev = g.add_node(f"pool{i}", "max_pool2d", _attrs("max_pool2d", kernel_size=2), [prev]).name
            pooled = True
        elif pooled and rng.random() < 0.05:
            prev = g.add_node(f"unpool{i}", "repeat_unpool", _attrs("repeat_unpool", factor=2), [prev]).name
            pooled = False
    if pooled:
        prev = g.add_node("unpool_end", "repeat_unpool", _attrs("repeat_unpool", factor=2), [prev]).name
    head = _attrs("conv2d", out_channels=1, kernel_size=3, padding="same")
    prev = g.add_node("head", "conv2d", head, [prev]).name
    g.add_node("y", "output", _attrs("output"), [prev])
    spdnn.infer_shapes(g)
    return g


def random_parents(nodes: int, seed: int = 0) -> list[spdnn.Graph]:
    """``nodes`` layer nodes in about sqrt(nodes) chains whose lengths pair up around the mean."""
    rng = random.Random(seed)
    parents = max(2, round(math.sqrt(nodes)) // 2 * 2)
    mean = max(4, nodes // parents)
    lengths = []
    for _ in range(parents // 2):
        d = rng.randint(0, mean // 2)
        lengths += [mean - d, mean + d]
    for i in range(nodes - mean * parents):  # the remainder, one layer each
        lengths[i] += 1
    return [random_parent(f"p{i}", n, rng) for i, n in enumerate(lengths)]


@dataclass
class Size:
    nodes: int
    parents: list[spdnn.Graph]
    result: MergeResult | None = None
    times: list[float] | None = None
    wall: list[float] | None = None
    peak_bytes: int = 0

    def merge(self) -> float:
        self.result = None  # freeing the previous run's result is not part of this run's time
        start, start_wall = time.process_time(), time.perf_counter()
        self.result = merge_networks(self.parents, "bench")
        elapsed = time.process_time() - start
        self.times = [*(self.times or []), elapsed]
        self.wall = [*(self.wall or []), time.perf_counter() - start_wall]
        return elapsed

    def measure_memory(self) -> None:
        tracemalloc.start()
        merge_networks(self.parents, "bench")
        self.peak_bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

    def describe(self) -> str:
        r = self.result
        first, *second = r.contractions
        searches = f"searches {first.searches} + {second[0].searches if second else 0}"
        refused = sum(len(c.refused) for c in r.contractions)
        t = self.times
        return (f"{len(self.parents):4d} parents, {self.nodes:7,d} layer nodes -> "
                f"{len(r.stages['contracted'].layers()):6,d} after input side -> {len(r.final.layers()):6,d} merged; "
                f"{searches}, {refused:,} refused; CPU min/median/max "
                f"{min(t):.2f}/{statistics.median(t):.2f}/{max(t):.2f} s (wall median "
                f"{statistics.median(self.wall):.2f} s); "
                f"{self.peak_bytes / self.nodes:,.0f} B peak per layer node")


def check(size: Size) -> list[str]:
    """What the benchmark promises about its input, independent of timing."""
    r = size.result
    first, second = r.contractions
    problems = []
    if len(r.stages["parents"].layers()) != size.nodes:
        problems.append(f"expected {size.nodes} layer nodes, got {len(r.stages['parents'].layers())}")
    if first.searches != 0:
        problems.append(f"the input-side contraction searched {first.searches} times (rule 4 says never)")
    if second.searches == 0:
        problems.append("the output-side contraction ran no cycle-avoiding search")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1k and 10k layer nodes, 2 runs (smoke test)")
    ap.add_argument("--runs", type=int, default=None, help="merges per size (default 3, --quick 2)")
    args = ap.parse_args()
    small_n, large_n = (1_000, 10_000) if args.quick else (10_000, 100_000)
    runs = args.runs or (2 if args.quick else 3)
    print("load average %.1f %.1f %.1f" % os.getloadavg())
    start = time.perf_counter()
    small, large = Size(small_n, random_parents(small_n)), Size(large_n, random_parents(large_n, seed=1))
    print(f"generated parents in {time.perf_counter() - start:.1f} s (not timed below)")
    ratios = []
    for i in range(runs):
        pair = (small, large) if i % 2 == 0 else (large, small)
        t = {s.nodes: s.merge() for s in pair}
        ratios.append(t[large_n] / t[small_n])
    for s in (small, large):
        s.measure_memory()
        print(s.describe())
    size_ratio = large.nodes / small.nodes
    merged_ratio = len(large.result.final.layers()) / len(small.result.final.layers())
    print("load average %.1f %.1f %.1f" % os.getloadavg())
    print(f"size ratio {size_ratio:.1f}, time ratio {statistics.median(ratios):.1f} "
          f"(per pair min/median/max {min(ratios):.1f}/{statistics.median(ratios):.1f}/{max(ratios):.1f}; "
          f"linear ~ {size_ratio:.0f}, quadratic ~ {size_ratio ** 2:.0f}); merged size ratio {merged_ratio:.1f}")
    if not args.quick:
        best = min(large.times)
        ok = best <= 3.0 and statistics.median(ratios) <= 12
        print(f"goal (100k layer nodes <= 3 CPU s, time ratio <= 12): {'met' if ok else 'MISSED'} "
              f"({best:.2f} s, ratio {statistics.median(ratios):.1f})")
    problems = check(small) + check(large)
    if len(large.result.final.layers()) <= len(small.result.final.layers()):
        problems.append("the merged network did not grow with the input")
    sys.stdout.flush()
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
