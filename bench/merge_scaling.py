"""How SPDNN merging scales with graph size.

Builds P random parent chains of L conv layers (kernels 3/5/7, widths 4..16, an occasional 2x2
pooling with its unpooling), then times ``merge_networks`` (labelling, both contractions, widths,
conversion back to a network). Prints the time at about 10k and 100k layer nodes and their ratio;
linear scaling gives a ratio near 10, quadratic near 100.

    python bench/merge_scaling.py            # 100 x 100 and 1000 x 100 layers
    python bench/merge_scaling.py --quick    # 10 x 100 and 100 x 100 (for smoke tests)
"""

from __future__ import annotations

import argparse
import random
import time

import spdnn
from spdnn.merge import merge_networks


def random_parent(name: str, layers: int, rng: random.Random) -> spdnn.Graph:
    g = spdnn.Graph(name)
    prev = g.add_node("x", "input", {"shape": [1, 16, 16]}).name
    pooled = False
    for i in range(layers - 1):
        k = rng.choice((3, 5, 7))
        prev = g.add_node(f"conv{i}", "conv2d", {"out_channels": rng.randint(4, 16), "kernel_size": k,
                                                 "padding": "same"}, [prev]).name
        prev = g.add_node(f"relu{i}", "relu", {}, [prev]).name
        if not pooled and rng.random() < 0.05:
            prev = g.add_node(f"pool{i}", "max_pool2d", {"kernel_size": 2}, [prev]).name
            pooled = True
        elif pooled and rng.random() < 0.05:
            prev = g.add_node(f"unpool{i}", "repeat_unpool", {"factor": 2}, [prev]).name
            pooled = False
    if pooled:
        prev = g.add_node("unpool_end", "repeat_unpool", {"factor": 2}, [prev]).name
    prev = g.add_node("head", "conv2d", {"out_channels": 1, "kernel_size": 3, "padding": "same"}, [prev]).name
    g.add_node("y", "output", {}, [prev])
    spdnn.infer_shapes(g)
    return g


def measure(parents: int, layers: int, seed: int = 0) -> tuple[int, float]:
    rng = random.Random(seed)
    nets = [random_parent(f"p{i}", layers, rng) for i in range(parents)]
    start = time.perf_counter()
    result = merge_networks(nets, "bench")
    elapsed = time.perf_counter() - start
    nodes = len(result.stages["parents"].layers())
    print(f"{parents:5d} parents x {layers} layers = {nodes:7,d} layer nodes -> "
          f"{len(result.final.layers()):5,d} merged; {elapsed:7.2f} s")
    return nodes, elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10x smaller sizes")
    args = ap.parse_args()
    small, large = (10, 100) if args.quick else (100, 1000)
    n1, t1 = measure(small, 100)
    n2, t2 = measure(large, 100)
    print(f"size ratio {n2 / n1:.1f}, time ratio {t2 / t1:.1f} "
          f"(linear ~ {n2 / n1:.0f}, quadratic ~ {(n2 / n1) ** 2:.0f})")


if __name__ == "__main__":
    main()
