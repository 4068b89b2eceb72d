"""spdnn's generated torch module against a hand-written ``nn.Module`` with the same weights.

For each shipped spec family (and the SPDNN merge of the four iris parents) it times the module
that ``spdnn.build_torch`` emits (a torch.fx GraphModule) against the hand-written module of
tests/hand_written.py, after checking that both give identical outputs. Cases: forward (eval mode,
no grad) and forward+backward (train mode), at batch 1 and 32.

Timing: the two sides run in interleaved pairs (A B, B A, ...); each side of a pair runs the case
``n`` times, ``n`` calibrated so that one side takes about ``--block`` seconds, and counts its fastest
call (on a shared machine single calls of the same module swing between two speeds, e.g. 320 and
600 ms for the merged iris network: the sum of a block mostly measures how many slow calls it
caught; the fastest call is what the code costs). The table gives the min / median / max over pairs
of the ratio generated / hand-written (1.00 = same speed, goal <= 1.05).

    python bench/torch_vs_hand.py            # every family, batch 1 and 32
    python bench/torch_vs_hand.py --quick    # batch 1, two pairs of tiny blocks, all but the merged iris network
    python bench/torch_vs_hand.py --only iris_merged --batch 32 --pairs 5   # one network, one batch size
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

import spdnn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import hand_written as hw  # noqa: E402  (tests/hand_written.py, shared with the parity tests)

IRIS_PARENTS = [f"iris/p{i}" for i in (1, 2, 3, 4)]
#: label -> (specs; several are merged with spdnn.merge_networks), hand-written module class
FAMILIES = {
    "mnist_baseline": (["dynamic_filters/mnist_baseline"], hw.Baseline),
    "iris_p1": (["iris/p1"], hw.IrisP1),
    "depth_net1": (["depth/net1"], hw.DepthNet1),
    "depth_net6": (["depth/net6"], hw.DepthNet6),
    "iris_appa_net3": (["iris_appa/net3_growing"], hw.Net3Growing),
    "vacgan_generator": (["vacgan_mnist/generator"], hw.Generator),
    "vacgan_discriminator": (["vacgan_mnist/discriminator"], hw.Discriminator),
    "vacgan_classifier": (["vacgan_mnist/classifier"], hw.Classifier),
    "iris_merged": (IRIS_PARENTS, hw.MergedIris),
}


def load_graph(specs: list[str]) -> spdnn.Graph:
    graphs = [spdnn.load_spec(ROOT / "specs" / f"{s}.yaml") for s in specs]
    return graphs[0] if len(graphs) == 1 else spdnn.merge_networks(graphs, "iris").graph


def build_pair(specs: list[str], hand_cls) -> tuple[torch.nn.Module, torch.nn.Module, tuple[int, ...]]:
    """The generated and hand-written modules with the same weights, and the input sample shape."""
    graph = load_graph(specs)
    generated = spdnn.build_torch(graph, seed=0)
    hand = hand_cls()
    hand.load_state_dict(generated.state_dict())
    (source,) = graph.input_nodes()
    return generated, hand, tuple(graph.out_types(source.name)[0].sample_shape)


def check_parity(generated, hand, x: torch.Tensor) -> None:
    generated.eval(), hand.eval()
    with torch.no_grad():
        if not torch.equal(generated(x), hand(x)):
            raise SystemExit(f"{type(hand).__name__}: outputs differ from the generated module")


def case_fn(module, x: torch.Tensor, backward: bool):
    if not backward:
        module.eval()

        def forward():
            with torch.no_grad():
                module(x)

        return forward
    module.train()

    def forward_backward():
        module.zero_grad(set_to_none=True)
        module(x).sum().backward()

    return forward_backward


def timed(fn, n: int) -> float:
    """The fastest of ``n`` calls, in seconds."""
    best = float("inf")
    for _ in range(n):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def ratios(generated_fn, hand_fn, pairs: int, block: float) -> list[float]:
    """Per-pair time ratios generated / hand-written (fastest call of each side), in alternating order."""
    generated_fn(), hand_fn()  # warm-up
    n = max(1, round(block / max(timed(hand_fn, 1), 1e-9)))
    out = []
    for i in range(pairs):
        if i % 2 == 0:
            a = timed(generated_fn, n)
            b = timed(hand_fn, n)
        else:
            b = timed(hand_fn, n)
            a = timed(generated_fn, n)
        out.append(a / b)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="batch 1, 2 pairs of tiny blocks; without --only, all but iris_merged (0.3 s a call)")
    parser.add_argument("--pairs", type=int, default=11, help="interleaved pairs per case")
    parser.add_argument("--block", type=float, default=0.2, help="seconds per side of a pair")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--only", nargs="+", choices=sorted(FAMILIES), help="networks to run (default: all)")
    parser.add_argument("--batch", nargs="+", type=int, choices=(1, 32), default=[1, 32],
                        help="batch sizes to run (default: 1 and 32)")
    args = parser.parse_args(argv)
    pairs, block, batches = (2, 0.002, [1]) if args.quick else (args.pairs, args.block, args.batch)
    torch.set_num_threads(args.threads)
    print(f"generated / hand-written time; {pairs} interleaved pairs per case, {args.threads} thread(s)")
    print(f"{'network':22s} {'case':18s} {'batch':>5s} {'min':>6s} {'median':>6s} {'max':>6s}")
    default = [f for f in FAMILIES if f != "iris_merged"] if args.quick else list(FAMILIES)
    for label in args.only or default:
        specs, hand_cls = FAMILIES[label]
        generated, hand, shape = build_pair(specs, hand_cls)
        torch.manual_seed(0)
        check_parity(generated, hand, torch.randn(2, *shape))
        for batch in batches:
            x = torch.randn(batch, *shape)
            for case, backward in (("forward", False), ("forward+backward", True)):
                row = f"{label:22s} {case:18s} {batch:5d}"
                if backward and batch == 1 and any(isinstance(m, torch.nn.BatchNorm1d) for m in hand.modules()):
                    print(f"{row}  n/a (BatchNorm1d cannot train on one sample)", flush=True)
                    continue
                r = ratios(case_fn(generated, x, backward), case_fn(hand, x, backward), pairs, block)
                print(f"{row} {min(r):6.3f} {statistics.median(r):6.3f} {max(r):6.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
