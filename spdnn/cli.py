"""The ``spdnn`` command line.

Exit codes: 0 success, 2 user error (bad spec, bad arguments; a short message, no traceback),
1 internal error (a bug: the traceback is shown).
"""

from __future__ import annotations

import argparse
import json
import sys

from spdnn.errors import SpdnnError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spdnn", description="spdnn: a graph-based network design compiler")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("compile", help="compile specs (several parents are merged into one SPDNN network)",
                       description="Compile specs and write DIR/<name>.pt (state dict), <name>.onnx (same weights), <name>.yaml "
                       "(resolved spec), <name>.dot and <name>.mmd (pictures), report.json and report.md. "
                       "Several inputs are merged into one semi-parallel network (SPDNN), which adds "
                       "merge_report.json/.md and a picture of every merge stage; --separate compiles "
                       "them one by one instead.")
    c.add_argument("inputs", nargs="+", metavar="INPUT", help="YAML spec files or ONNX models (.onnx)")
    c.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    c.add_argument("--seed", type=int, default=0, help="seed of the initial weights (default 0)")
    c.add_argument("--separate", action="store_true", help="compile several inputs separately, no merge")
    c.add_argument("--opset", type=int, default=None, help="ONNX opset of <name>.onnx (default 17)")
    m = c.add_argument_group("SPDNN merging (several inputs)")
    m.add_argument("--name", default="merged", help="name of the merged model (default: merged)")
    m.add_argument("--label-key", choices=["paper", "extended"], default="paper",
                   help="merge on the thesis's label (kernel/width, pooling, distance; default) or also "
                   "require equal stride, padding, normalisation and activation (extended)")
    m.add_argument("--align", choices=["pool", "unpool"], default="pool",
                   help="align concatenated resolutions by pooling the larger (default) or "
                   "repeat-value unpooling the smaller")
    m.add_argument("--width-policy", choices=["max", "min", "mean"], default="max",
                   help="width of a merged layer from its members' widths (default max)")
    m.add_argument("--budget", type=_budget, default=None, metavar="N|largest",
                   help="rescale widths so the merged network has N parameters (within 2%%), or as many "
                   "as the largest parent")
    m.add_argument("--head-kernel", type=_positive_int, default=3, help="kernel of the output head conv (default 3)")
    m.add_argument("--no-output-pass", action="store_true",
                   help="stop after the first contraction (the thesis's App. A/B write-ups)")

    i = sub.add_parser("inspect", help="print the per-layer table of a spec (or an ONNX model)")
    i.add_argument("spec", metavar="SPEC")
    i.add_argument("--json", action="store_true", help="machine-readable output")

    r = sub.add_parser("run", help="run an ONNX model in onnxruntime (CUDA when available, else CPU)",
                       description="Run MODEL.onnx on inputs from .npy files and print each output's shape "
                       "and statistics; -o saves the outputs as .npz.")
    r.add_argument("model", metavar="MODEL.onnx")
    r.add_argument("--input", "-i", action="append", default=[], metavar="[NAME=]FILE.npy",
                   help="an input array; repeat for several inputs (positional order, or NAME=FILE)")
    r.add_argument("-o", "--output", metavar="FILE.npz", help="save the outputs")
    r.add_argument("--cpu", action="store_true", help="use the CPU provider even when CUDA is available")

    s = sub.add_parser("schema", help="print the JSON Schema of the spec format")
    s.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    return p


def _version() -> str:
    from spdnn import __version__

    return f"spdnn {__version__}"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _budget(text: str) -> int | str:
    if text == "largest":
        return text
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a parameter count or 'largest', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("the budget must be positive")
    return value


def _cmd_compile(args) -> int:
    from spdnn.compile import compile_specs, merge_specs, write_outputs
    from spdnn.merge import MergeOptions

    if len(args.inputs) > 1 and not args.separate:
        options = MergeOptions(key=args.label_key, align=args.align, width_policy=args.width_policy,
                               budget=args.budget, head_kernel=args.head_kernel,
                               output_pass=not args.no_output_pass)
        model, result = merge_specs(args.inputs, args.name, options, seed=args.seed, opset=args.opset)
        models = [model]
        red = result.report()["reduction_percent"]
        print(f"merged {len(args.inputs)} parents into {args.name}: {len(result.stages['parents'].layers())} "
              f"layers became {len(result.final.layers())} ({red['params']}% fewer parameters than the "
              "parents together)")
    else:
        models = compile_specs(args.inputs, seed=args.seed, opset=args.opset)
    written = write_outputs(models, args.output)
    for m in models:
        print(f"{m.graph.name}: {len(m.summary.layers)} nodes, {m.summary.total_params:,} params, "
              f"{m.summary.total_flops:,} FLOPs")
    print(f"wrote {len(written)} files to {args.output}")
    return 0


def _cmd_inspect(args) -> int:
    from spdnn.compile import load_input
    from spdnn.summary import summarize

    summary = summarize(load_input(args.spec))
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        sys.stdout.write(summary.to_text())
    return 0


def _cmd_run(args) -> int:
    import numpy as np

    from spdnn.backends.onnx_exporter import read_model, run_onnx
    from spdnn.errors import SpdnnError

    model = read_model(args.model)
    named: dict[str, np.ndarray] = {}
    positional: list[np.ndarray] = []
    for item in args.input:
        name, sep, path = item.rpartition("=")
        try:
            array = np.load(path, allow_pickle=False)
        except OSError as e:
            raise SpdnnError(f"cannot read input {path!r}: {e.strerror or e}") from None
        except ValueError:
            raise SpdnnError(f"input {path!r} is not a .npy array file (numpy.save writes one)") from None
        if sep:
            named[name] = array
        else:
            positional.append(array)
    if named and positional:
        raise SpdnnError("give inputs either all by position or all as NAME=FILE.npy")
    try:
        outputs, provider = run_onnx(model, named or positional, ["CPUExecutionProvider"] if args.cpu else None)
    except Exception as e:  # onnxruntime reports bad feeds with its own exception types
        raise SpdnnError(f"onnxruntime could not run {args.model}: {e}") from None
    print(f"provider: {provider}")
    for name, value in outputs.items():
        print(f"{name}: shape {tuple(value.shape)} {value.dtype}, min {value.min():.6g}, "
              f"max {value.max():.6g}, mean {value.mean():.6g}")
    if args.output:
        np.savez(args.output, **outputs)
        print(f"wrote {args.output}")
    return 0


def _cmd_schema(args) -> int:
    from spdnn.frontends.yaml_importer.schema import spec_json_schema

    text = json.dumps(spec_json_schema(), indent=2) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``spdnn`` console script."""
    args = _parser().parse_args(argv)
    handler = {"compile": _cmd_compile, "inspect": _cmd_inspect, "run": _cmd_run,
               "schema": _cmd_schema}[args.command]
    try:
        return handler(args)
    except SpdnnError as e:
        print(f"spdnn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"spdnn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
