"""onnxruntime speed of spdnn's ONNX against ``torch.onnx.export``'s ONNX of the same module and
weights, on every shipped spec and the merged iris network, at batch 1 and 32.

Both files run in onnxruntime's CPU provider with the same session options: all graph
optimisations, ``--threads`` intra-op threads (default 1), one inter-op thread, spinning
disabled for both thread pools. Each file gets two sessions, made in the order spdnn, torch,
torch, spdnn and called in turn: a session made later in a process runs faster (up to 10-25% on
small networks at batch 1), which favoured whichever file was loaded last. The two sessions (and, with ``--eager``, the torch module itself
under ``torch.set_num_threads(--threads)``) are timed interleaved in one process (A B, B A, ...;
see pairs.py). Ratio: spdnn-file time / torch-file time per round, min/median/max over the rounds
(goal: median <= 1.05). Before timing, the two files' outputs are compared (1e-4 + 1e-3 |ref|);
a mismatch ends the run with exit status 1.

    python bench/ort_vs_torch_export.py            # every network, batch 1 and 32
    python bench/ort_vs_torch_export.py --quick    # two small networks, 3 rounds (smoke test)
    python bench/ort_vs_torch_export.py --only depth/net3,depth/net4 --rounds 60
    python bench/ort_vs_torch_export.py --eager    # also onnxruntime (spdnn's file) vs torch eager
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from pairs import block_size, interleaved, networks, rounds_within, sample_inputs, spread, torch_onnx_export  # noqa: E402
from spdnn.backends.onnx_exporter import export_onnx_bytes  # noqa: E402

import spdnn  # noqa: E402

HEADER = (f"{'network':28} {'batch':>5} {'rounds':>6} {'spdnn ms':>9} {'torch.onnx ms':>13} | "
          f"{'spdnn/torch.onnx: min':>21} {'median':>6} {'max':>6}")
EAGER_HEADER = f" | {'eager ms':>9} {'spdnn-ort/eager: min':>20} {'median':>6} {'max':>6}"


def session(model: bytes, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


class Mismatch(Exception):
    pass


class Alternating:
    """Calls two sessions of one file in turn, on the same inputs."""

    def __init__(self, a: ort.InferenceSession, b: ort.InferenceSession, xs: tuple[torch.Tensor, ...]):
        self.runs = [(s, {i.name: x.numpy() for i, x in zip(s.get_inputs(), xs, strict=True)}) for s in (a, b)]
        self.calls = 0

    def __call__(self):
        s, feed = self.runs[self.calls % 2]
        self.calls += 1
        return s.run(None, feed)


def measure(name: str, graph: spdnn.Graph, module: torch.nn.Module, files: tuple[bytes, bytes], batch: int,
            args) -> tuple[str, float]:
    """The table row and the median spdnn/torch.onnx ratio."""
    xs = sample_inputs(graph, batch)
    # two sessions per side, made in the order ours, theirs, theirs, ours: in one process a
    # session made later runs faster (four sessions of one model: 5.0/4.5/4.4/4.0 ms medians by
    # the order they were made), so each side gets the same average place
    first, *seconds, last = (session(files[i], args.threads) for i in (0, 1, 1, 0))
    ours, theirs = Alternating(first, last, xs), Alternating(*seconds, xs)
    for a, b in zip(ours(), theirs(), strict=True):
        if a.shape != b.shape or not np.all(np.abs(a - b) <= 1e-4 + 1e-3 * np.abs(b)):
            raise Mismatch(f"{name} batch {batch}: spdnn's and torch.onnx.export's files disagree")
    fns = [ours, theirs]
    if args.eager:
        def eager():
            with torch.no_grad():
                return module(*xs)
        fns.append(eager)
    calls = block_size(fns, 0.05)
    probe = interleaved(fns, 1, calls)
    rounds = rounds_within(calls * sum(t[0] for t in probe), args.rounds, args.budget)
    times = interleaved(fns, rounds, calls)
    ratios = [a / b for a, b in zip(times[0], times[1], strict=True)]
    row = (f"{name:28} {batch:5} {rounds:6} {statistics.median(times[0]) * 1e3:9.3f} "
           f"{statistics.median(times[1]) * 1e3:13.3f} | {'':15}{spread(ratios)}")
    if args.eager:
        eager_ratios = [a / e for a, e in zip(times[0], times[2], strict=True)]
        row += f" | {statistics.median(times[2]) * 1e3:9.3f} {'':14}{spread(eager_ratios)}"
    return row, statistics.median(ratios)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="two small networks, 3 rounds")
    ap.add_argument("--only", default="", help="comma-separated networks to run, e.g. depth/net3,depth/net4")
    ap.add_argument("--rounds", type=int, default=30, help="interleaved rounds (default 30)")
    ap.add_argument("--budget", type=float, default=10.0,
                    help="seconds per network and batch size, cuts rounds (default 10)")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads of every side (default 1)")
    ap.add_argument("--eager", action="store_true", help="also time torch eager")
    args = ap.parse_args()
    if args.quick:
        args.rounds = 3
    torch.set_num_threads(args.threads)
    print(HEADER + (EAGER_HEADER if args.eager else ""))
    medians = []
    for name, graph in networks(args.quick, args.only):
        module = spdnn.build_torch(graph, seed=0).eval()
        files = (export_onnx_bytes(graph, module.state_dict()),
                 torch_onnx_export(module, graph, sample_inputs(graph, 1)))
        for batch in (1, 32):
            try:
                row, median = measure(name, graph, module, files, batch, args)
            except Mismatch as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
            medians.append(median)
            print(row, flush=True)
    print(f"highest median spdnn/torch.onnx ratio: {max(medians):.2f} (goal <= 1.05)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
