"""The ``spdnn`` command line.

Exit codes: 0 success; 2 user error (bad spec, bad arguments, unreadable file: a short located
message, no traceback); 1 internal error (a bug in spdnn: one line asking for a report, the
traceback only with ``-v``); 130 interrupted (Ctrl-C); 141 output pipe closed (``| head``).

Only argparse is imported up front so that ``spdnn --help`` starts fast; each command imports
what it needs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import textwrap

from spdnn import cli_args

from spdnn.cli_passes import add_pass_arguments, add_passes_parser, apply_cli_passes, cmd_passes, load_cli_plugins
from spdnn.cli_train import add_train_parsers, cmd_eval, cmd_train
from spdnn.errors import first_line

__all__ = ["main"]



def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spdnn", formatter_class=cli_args.FORMAT,
        description="spdnn: a graph-based network design compiler. YAML or ONNX network specs in; "
        "merged (SPDNN) networks, torch state dicts, ONNX models, reports and pictures out.",
        epilog=cli_args.examples("spdnn compile specs/iris/*.yaml        # merge the four iris parents",
                         "spdnn inspect specs/vacgan_mnist/classifier.yaml",
                         "spdnn COMMAND --help                   # options and examples of a command"))
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    loud = common.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", action="store_true",
                      help="print no progress or status lines: only errors and the output the command "
                           "exists for (the table of inspect, list, passes, the schema)")
    loud.add_argument("-v", "--verbose", action="store_true",
                      help="print more (each file written; the traceback of an internal error)")
    limits = argparse.ArgumentParser(add_help=False)
    lg = limits.add_argument_group("limits (docs/limits.md)")
    lg.add_argument("--max-params", type=cli_args.count, default=None, metavar="N",
                    help="largest parameter count of a layer or a network (default 2e9)")
    lg.add_argument("--max-elements", type=cli_args.count, default=None, metavar="N",
                    help="largest element count of one sample of a tensor (default 2e9)")

    c = sub.add_parser(
        "compile", parents=[common, limits], formatter_class=cli_args.FORMAT,
        help="compile specs (several are merged into one SPDNN network)",
        description=textwrap.dedent("""\
            Compile specs into DIR: <name>.pt (state dict), <name>.onnx (same weights), <name>.yaml
            (resolved spec), <name>.dot and <name>.mmd (pictures), report.json and report.md.
            Several inputs are merged into one semi-parallel network (SPDNN), which adds
            merge_report.json/.md and a picture of every merge stage; --separate compiles them one
            by one instead. DIR (default out/<name>) is replaced as a whole, atomically: it never
            mixes files of two runs. A folder holding files spdnn did not write is refused."""),
        epilog=cli_args.examples("spdnn compile specs/iris/*.yaml                      # -> out/iris/",
                         "spdnn compile specs/iris/*.yaml --name iris_fcdnn --budget largest",
                         "spdnn compile specs/vacgan_mnist/classifier.yaml -o build/classifier",
                         "spdnn compile --separate specs/*/*.yaml -o out/all",
                         "spdnn compile model.onnx                             # import ONNX"))
    c.add_argument("inputs", nargs="+", metavar="INPUT", help="YAML spec files, ONNX models (.onnx) or shipped model names (spdnn list)")
    c.add_argument("-o", "--output", metavar="DIR",
                   help="output folder (default out/<name>: the model's name, or for several inputs "
                   "the name of their common folder)")
    c.add_argument("--seed", type=cli_args.seed, default=0, help="seed of the initial weights (default 0)")
    c.add_argument("--separate", action="store_true", help="compile several inputs separately, no merge")
    c.add_argument("--opset", type=int, default=None, help="ONNX opset of <name>.onnx (default 17)")
    c.add_argument("--picture", choices=["compact", "full"], default="compact",
                   help="compact pictures fold batch norm and activation into their conv/linear box "
                   "(default); full draws every node")
    m = c.add_argument_group("SPDNN merging (several inputs)")
    m.add_argument("--name", default=None,
                   help="name of the merged model (default: the inputs' common folder, else 'merged')")
    m.add_argument("--label-key", choices=["paper", "extended"], default="paper",
                   help="merge on the thesis's label (kernel/width, pooling, distance; default) or also "
                   "require equal stride, padding, normalisation and activation (extended)")
    m.add_argument("--align", choices=["auto", "pool", "unpool"], default="auto",
                   help="at a concatenation, bring each branch to the resolution its members had in their "
                   "own parents (auto, default: thesis L3446-3448), or force pooling the larger / "
                   "repeat-value unpooling the smaller everywhere")
    m.add_argument("--width-policy", choices=["max", "min", "mean"], default="max",
                   help="width of a merged layer from its members' widths (default max)")
    m.add_argument("--budget", type=cli_args.budget, default=None, metavar="N|largest",
                   help="rescale widths so the merged network has N parameters (within 2%%), or as many "
                   "as the largest parent")
    m.add_argument("--head-kernel", type=cli_args.positive_int, default=3, help="kernel of the output head conv (default 3)")
    m.add_argument("--merge-head", metavar="SPEC", default=None,
                   help="after the merge, concatenate the parallel branches pooled and unpooled and finish with "
                        "this head network spec (inputs 'pooled' and 'unpooled'; pass spdnn-merge-head, thesis App. B)")
    m.add_argument("--init-from-parents", action="store_true",
                   help="warm start from the parents' trained weights (.onnx parents, or <spec>.pt beside a "
                   "YAML parent): merged layers hold every member's channels, block-diagonal, so the merged "
                   "network starts as the average of the parents' logits (not with --budget)")
    m.add_argument("--no-output-pass", action="store_true",
                   help="stop after the first contraction (the thesis's App. A/B write-ups)")
    add_pass_arguments(c)

    i = sub.add_parser(
        "inspect", parents=[common, limits], formatter_class=cli_args.FORMAT,
        help="print the per-layer table of a spec or an ONNX model",
        description="Load a spec (or import an ONNX model), infer shapes and print each layer's op, "
        "output shape, parameters and FLOPs (per sample), with totals.",
        epilog=cli_args.examples("spdnn inspect specs/dynamic_filters/mnist_baseline.yaml",
                         "spdnn inspect model.onnx --json | jq .total_params"))
    i.add_argument("spec", metavar="SPEC", help="a YAML spec, an ONNX model or a shipped model name (spdnn list)")
    i.add_argument("--json", action="store_true", help="machine-readable output (exact numbers)")

    r = sub.add_parser(
        "run", parents=[common], formatter_class=cli_args.FORMAT,
        help="run an ONNX model in onnxruntime (CUDA when available, else CPU)",
        description="Run MODEL.onnx on inputs from .npy files (or random inputs) and print each "
        "output's shape and statistics; -o saves the outputs as .npz.",
        epilog=cli_args.examples("spdnn run out/iris/iris.onnx --random --batch 2",
                         "spdnn run model.onnx -i x.npy -o y.npz",
                         "spdnn run model.onnx -i image=x.npy -i code=c.npy"))
    r.add_argument("model", metavar="MODEL.onnx")
    r.add_argument("--input", "-i", action="append", default=[], metavar="[NAME=]FILE.npy",
                   help="an input array; repeat for several inputs (positional order, or NAME=FILE)")
    r.add_argument("--random", action="store_true",
                   help="feed standard-normal random inputs of the model's shapes (see --batch, --seed)")
    r.add_argument("--batch", type=cli_args.positive_int, default=1, help="batch size of --random inputs (default 1)")
    r.add_argument("--seed", type=cli_args.seed, default=0, help="seed of --random inputs (default 0)")
    r.add_argument("-o", "--output", metavar="FILE.npz", help="save the outputs")
    r.add_argument("--cpu", action="store_true", help="use the CPU provider even when CUDA is available")

    ls = sub.add_parser(
        "list", parents=[common], formatter_class=cli_args.FORMAT,
        help="list the shipped models of the source papers",
        description="List every spec shipped with spdnn (one folder per paper): name, kind (network or "
        "system), parameters, status (checked: hand-derived values from the paper are compared by the "
        "tests), the model IDs of the papers' catalogue and the paper. Any listed name works where a "
        "spec path does: spdnn compile iris merges the four iris parents.",
        epilog=cli_args.examples("spdnn list", "spdnn compile iris", "spdnn inspect vacgan_mnist/classifier",
                                 "spdnn list --json | jq '.[].name'"))
    ls.add_argument("--json", action="store_true", help="machine-readable output")

    s = sub.add_parser(
        "schema", parents=[common], formatter_class=cli_args.FORMAT,
        help="print the JSON Schema of the spec format (for editors)",
        description="Print (or write) the JSON Schema of the spec format, generated from the op "
        "registry: every op and attribute with its type, default and description. With "
        "yaml-language-server, put '# yaml-language-server: $schema=spdnn.schema.json' at the top "
        "of a spec for completion, hover and validation.",
        epilog=cli_args.examples("spdnn schema -o spdnn.schema.json"))
    s.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    add_train_parsers(sub, common)
    add_passes_parser(sub, common)
    return p


def _version() -> str:
    from spdnn import __version__

    return f"spdnn {__version__}"


class _Console:
    """Prints what a command has to say, honouring -q (nothing) and -v (details too)."""

    def __init__(self, args: argparse.Namespace):
        self.quiet = getattr(args, "quiet", False)
        self.verbose = getattr(args, "verbose", False)

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text)

    def warn(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr)

    def detail(self, text: str) -> None:
        if self.verbose:
            print(text)


def _cmd_compile(args, console: _Console) -> int:
    from spdnn.compile import compile_specs, default_name, merge_specs, write_outputs
    from spdnn.merge import MergeOptions
    from spdnn.summary import human_count, human_flops

    load_cli_plugins(args)
    passes = lambda graph: apply_cli_passes(graph, args)  # noqa: E731
    from spdnn.system.compile import compile_system, is_system_file

    if len(args.inputs) == 1 and is_system_file(args.inputs[0]):
        compile_system(args.inputs[0], args.output, args.seed, args.opset, args.picture, passes, console.say)
        return 0
    merging = len(args.inputs) > 1 and not args.separate
    if merging:
        name = args.name or default_name(args.inputs, "merged")
        options = MergeOptions(key=args.label_key, align=args.align, width_policy=args.width_policy,
                               budget=args.budget, head_kernel=args.head_kernel, head=args.merge_head,
                               output_pass=not args.no_output_pass, init_from_parents=args.init_from_parents)
        model, result = merge_specs(args.inputs, name, options, seed=args.seed, opset=args.opset,
                                    picture=args.picture, passes=passes)
        models = [model]
        red = result.report()["reduction_percent"]["params"]
        change = f"{red}% fewer" if red >= 0 else f"{-red}% more"
        replaced = f", {len(result.head['removed'])} of them replaced by the head" if result.head else ""
        console.say(f"merged {len(args.inputs)} parents into {name}: {len(result.stages['parents'].layers())} "
                    f"layers became {len(result.final.layers())}{replaced} ({change} parameters than the parents "
                    "together)")
        for decision in result.decisions():
            console.warn(f"warning: {decision.line()}")
    else:
        models = compile_specs(args.inputs, seed=args.seed, opset=args.opset, picture=args.picture, passes=passes)
        name = models[0].graph.name if len(models) == 1 else default_name(args.inputs, "models")
    for m in models:
        for note in m.notes:
            console.say(f"note: {note}")
    out_dir = args.output or os.path.join("out", name)
    written = write_outputs(models, out_dir)
    for m in models:
        console.say(f"{m.graph.name}: {len(m.summary.layers)} nodes, {human_count(m.summary.total_params)} params, "
                    f"{human_flops(m.summary.total_flops)}")
    for path in written:
        console.detail(f"  {path}")
    console.say(f"wrote {len(written)} files to {out_dir}")
    return 0


def _cmd_inspect(args, console: _Console) -> int:
    from spdnn.compile import load_input
    from spdnn.summary import summarize

    summary = summarize(load_input(args.spec))
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        sys.stdout.write(summary.to_text())
    return 0


def _cmd_run(args, console: _Console) -> int:
    from spdnn.run import run_model

    run_model(args, console)
    return 0


def _cmd_schema(args, console: _Console) -> int:
    from spdnn.compile import write_file_atomically
    from spdnn.frontends.yaml_importer.schema import spec_json_schema

    text = json.dumps(spec_json_schema(), indent=2) + "\n"
    if args.output:
        write_file_atomically(args.output, text.encode())
        console.say(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _resolve_shipped_names(args) -> None:
    """Inputs that are not paths but name shipped models (``iris``, ``vacgan_mnist/classifier``)
    become the shipped spec files (spdnn.shipped, rule 1)."""
    from spdnn.shipped import resolve_input, resolve_inputs

    if args.command == "compile":
        args.inputs = resolve_inputs(args.inputs)
    elif args.command in ("inspect", "train"):
        args.spec = resolve_input(args.spec)
    elif args.command == "eval":
        args.model = resolve_input(args.model)


def _cmd_list(args, console: _Console) -> int:
    from spdnn.shipped import catalogue
    from spdnn.summary import human_count

    models = catalogue()
    if args.json:
        print(json.dumps([m.as_json() for m in models], indent=2))
        return 0
    rows = [("model", "kind", "params", "status", "IDs", "paper")]
    rows += [(m.name, m.kind, human_count(m.params) if m.params is not None else "-", m.status,
              ", ".join(m.ids) or "-", m.paper) for m in models]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    print(f"{sum(m.kind == 'network' for m in models)} networks and {sum(m.kind == 'system' for m in models)} "
          "systems; compile one by name: spdnn compile iris, spdnn inspect vacgan_mnist/classifier")
    return 0


def _limit_overrides(args) -> dict[str, int]:
    return {k: v for k in ("max_params", "max_elements") if (v := getattr(args, k, None)) is not None}


_COMMANDS = {"compile": _cmd_compile, "inspect": _cmd_inspect, "run": _cmd_run, "schema": _cmd_schema,
             "list": _cmd_list}
_COMMANDS.update(train=cmd_train, eval=cmd_eval, passes=cmd_passes)


def _run(args) -> int:
    from spdnn.errors import SpdnnError
    from spdnn.limits import overridden

    console = _Console(args)
    try:
        _resolve_shipped_names(args)
        with overridden(**_limit_overrides(args)):
            return _COMMANDS[args.command](args, console)
    except SpdnnError as e:
        print(f"spdnn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except (OSError, MemoryError) as e:
        if isinstance(e, BrokenPipeError):
            raise
        print(f"spdnn {args.command}: error: {_os_error_text(e)}", file=sys.stderr)
        return 2


def _os_error_text(e: BaseException) -> str:
    if isinstance(e, MemoryError):
        return "out of memory (lower the sizes in the spec, or the limits in docs/limits.md)"
    if isinstance(e, OSError) and e.strerror:
        where = f"{e.filename}: " if e.filename else ""
        return f"{where}{e.strerror.lower()}"
    return str(e)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``spdnn`` console script."""
    args = None
    argv = sys.argv[1:] if argv is None else argv
    if any("\0" in a for a in argv):  # only from Python: a shell cannot pass one
        print("spdnn: error: an argument contains a NUL byte", file=sys.stderr)
        return 2
    interrupted, previous = _watch_interrupts()
    try:
        args = _parser().parse_args(argv)
        return _run(args)
    except KeyboardInterrupt:
        print("\nspdnn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`spdnn inspect x --json | head -1`): end quietly, as Unix tools do.
        _silence_stdout()
        return 141
    except SystemExit as e:  # argparse: --help (0) or bad arguments (2)
        return e.code if isinstance(e.code, int) else 2
    except Exception as e:  # a bug in spdnn, or an interrupt that a library turned into an error
        if interrupted:  # e.g. Ctrl-C while a C extension initialises: "ImportError: initialization failed"
            print("\nspdnn: interrupted", file=sys.stderr)
            return 130
        command = f"spdnn {args.command}" if args is not None else "spdnn"
        if args is not None and getattr(args, "verbose", False):
            import traceback

            traceback.print_exc()
        print(f"{command}: internal error (a bug in spdnn: please report it with the command and its "
              f"inputs; -v shows the traceback): {type(e).__name__}: {first_line(e) if str(e).strip() else ''}",
              file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _watch_interrupts() -> tuple[list[bool], object]:
    """Make Ctrl-C raise KeyboardInterrupt as usual, and remember that it came (a non-empty list),
    so an error a library raises because of it is still reported as an interrupt. Returns the
    list and the previous handler (None when not on the main thread, where no handler can be set)."""
    import threading

    seen: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        return seen, None

    def handler(signum, frame):
        seen.append(True)
        raise KeyboardInterrupt

    return seen, signal.signal(signal.SIGINT, handler)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def console_main() -> None:
    """The ``spdnn`` console script: ``main()``, then exit with its code. After an interrupt the
    process ends at once with 130 (cleanup already ran in ``finally`` blocks), so no finaliser of a
    library can turn it into a death by SIGINT; a Ctrl-C that comes while the interpreter shuts down
    after a finished command is ignored."""
    code = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the outcome is decided: a late Ctrl-C cannot change it
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


if __name__ == "__main__":
    console_main()
